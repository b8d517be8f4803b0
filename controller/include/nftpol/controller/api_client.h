#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "nftpol/result.h"

namespace nftpol::controller {

// The HTTP edge of the Kubernetes source: GETs against the API server, one connection per object. An
// interface, so that the list/watch protocol is tested against scripted servers as well as a real one.
class ApiClient {
 public:
  virtual ~ApiClient() = default;

  struct Response {
    int status = 0;
    std::string body;  // a list's JSON; for a stream, the body of a non-200 answer
  };
  // A GET of `target` (path and query), the whole body.
  virtual Result<Response> get(const std::string& target) = 0;
  // A GET whose body is a stream of lines (a watch): `onLine` gets each whole line as it arrives and returns
  // false to end the stream. Returns when the server ends it, `onLine` refused, nothing arrived for the stall
  // timeout (an error), or cancel() was called.
  virtual Result<Response> stream(const std::string& target,
                                  const std::function<bool(std::string_view)>& onLine) = 0;
  // Ends a get() or stream() in progress, from another thread; later calls fail at once.
  virtual void cancel() = 0;
};

}  // namespace nftpol::controller
