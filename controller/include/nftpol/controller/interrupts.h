#pragma once

namespace nftpol::controller {

// What ends a source's wait besides its own events: a stop (StopSignal::fd()) and a CNI handoff waiting to
// be taken (CniServer::fd()). -1: none.
struct Interrupts {
  int stop = -1;
  int handoff = -1;
};

}  // namespace nftpol::controller
