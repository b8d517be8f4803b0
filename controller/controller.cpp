#include "nftpol/controller/controller.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "nftpol/controller/http_server.h"
#include "nftpol/controller/log.h"
#include "nftpol/controller/reconcile.h"
#include "nftpol/nft/conntrack.h"
#include "nftpol/render/render.h"

namespace nftpol::controller {

namespace handoff = cni::handoff;

namespace {
using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kMinBackoff{100}, kMaxBackoff{30000};
constexpr std::chrono::milliseconds kIdle{60000};  // a periodic full resync repairs tampering nobody reported
constexpr std::chrono::seconds kReleasedFor{
    600};  // a released address stays closed to stale objects this long
constexpr std::chrono::milliseconds kAnswerMargin{250};  // the answer's way back to the plugin
using handoff::Reply;

std::string msText(Clock::duration d) {
  return std::to_string(std::chrono::duration<double, std::milli>(d).count());
}
}  // namespace

Controller::Controller(ControllerOptions options, std::unique_ptr<Source> source,
                       std::unique_ptr<nft::Backend> backend)
    : options_(std::move(options)),
      source_(std::move(source)),
      backend_(std::move(backend)),
      reconciler_(options_.node, *backend_, options_.flowLog) {}

// Takes what changed and reconciles. Returns true when the kernel now holds the source's current objects.
bool Controller::syncOnce(bool& firstSyncBlocked) {
  auto change = source_->take();
  ++modelVersion_;  // the state may have changed under the flow log's attribution model
  std::vector<policy::ObjectRef> refs = std::move(change.objects);
  if (!refs.empty() || !loaded_) revocationOwed_ = true;
  if (cni_) {
    auto now = Clock::now();
    auto let = [&](const BookChange& c) {
      if (!c.pods.empty() || !c.addresses.empty()) revocationOwed_ = true;
      noteBookChange(c);
    };
    for (const auto& ref : refs)  // a pod the source let go of lets go of its addresses here too
      if (ref.kind == policy::Pod::kKind &&
          !source_->state().findPod(policy::ObjectName::of(ref.key).ns, policy::ObjectName::of(ref.key).name))
        let(book_.podGone(ref.key, now));
    let(book_.expire(now, kReleasedFor));
    for (const auto& key : bookDirty_)
      refs.push_back({std::string(policy::Pod::kKind), key});
    if (!bookAddresses_.empty()) {
      std::sort(bookAddresses_.begin(), bookAddresses_.end());
      for (const auto& pod : source_->state().pods())
        for (const auto& ip : pod.ips)
          if (std::binary_search(bookAddresses_.begin(), bookAddresses_.end(), ip))
            refs.push_back({std::string(policy::Pod::kKind), pod.key()});
    }
    bookDirty_.clear();
    bookAddresses_.clear();
    std::sort(refs.begin(), refs.end());
    refs.erase(std::unique(refs.begin(), refs.end()), refs.end());
    if (loaded_)
      for (const auto& ref : refs)
        derive(ref);
  }
  // Kept until a commit succeeds: a failed or blocked sync is still owed them.
  uncommitted_.insert(uncommitted_.end(), change.arrivals.begin(), change.arrivals.end());
  for (const auto& d : change.diagnostics)
    logLine(d.severity == policy::Severity::kError ? "error" : "warn", d.toString(), "event=manifest");
  if (change.rejected) {
    metrics_.manifestErrors(change.rejected);
    logWarn(std::to_string(change.rejected) + " input(s) have errors; their last valid objects stay in force",
            "event=manifest-errors");
  }
  // Before the first sync a broken input has no last valid version, and enforcing without it could open
  // traffic that an earlier run closed: wait until the source is complete.
  if (!metrics_.ready() && !source_->complete()) {
    firstSyncBlocked = true;
    return false;
  }
  firstSyncBlocked = false;
  auto start = Clock::now();
  Result<ReconcileResult> result = Error{""};
  std::vector<Cidr> extra = options_.podCidrs;
  extra.insert(extra.end(), book_.subnets().begin(), book_.subnets().end());
  auto subnets = ownPodSubnets(source_->state(), options_.node, extra);
  reconciler_.setPodSubnets(subnets);
  try {
    if (!loaded_) {
      // The periodic resync also rebuilds the table from scratch; the incremental one must have been equal.
      std::optional<nft::Table> kept;
      if (metrics_.ready()) kept = reconciler_.table();
      if (cni_) {  // the whole state again, every pod the book knows overlaid
        effective_ = source_->state();
        for (const auto& pod : source_->state().pods())
          if (book_.touches(pod))
            if (auto o = book_.overlay(pod, options_.node)) effective_.upsert(std::move(*o));
      }
      reconciler_.load(enforced());
      loaded_ = true;
      if (kept && !(*kept == reconciler_.table()))
        logError("the incrementally kept table differed from a full render; the full render is applied",
                 "event=incremental-drift");
    } else {
      reconciler_.update(enforced(), refs);
    }
    result = reconciler_.apply();
  } catch (const render::NameCollision& e) {
    // Never by chance, and never silently: nothing of this render is applied, and the next try starts over.
    loaded_ = false;
    result = Error{"internal error: " + std::string(e.what())};
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!result) {
    metrics_.reconcileFailed();
    lastFailure_ = result.error().message;
    logError(result.error().message, "event=reconcile-failed node=" + options_.node);
    return false;
  }
  if (revoker_ && result->messages > 0 && revocationOwed_) revoker_->submit(reconciler_.table());
  revocationOwed_ = false;
  committedSubnets_ = std::move(subnets);
  if (!syncRoutes()) return false;
  metrics_.reconciled(seconds, result->messages, result->pods, result->policies, result->elements,
                      source_->generation());
  metrics_.committed(uncommitted_, Clock::now());
  uncommitted_.clear();
  logInfo("reconciled",
          "event=reconciled node=" + options_.node + " generation=" + std::to_string(source_->generation()) +
              " messages=" + std::to_string(result->messages) + " pods=" + std::to_string(result->pods) +
              " policies=" + std::to_string(result->policies) +
              " duration_ms=" + std::to_string(seconds * 1000));
  return true;
}

// Before the generation is reported synced, so that readiness also means the routes are in place.
bool Controller::syncRoutes() {
  if (!options_.nodeRoutes) return true;
  auto want = desiredRoutes(source_->state(), options_.node, options_.podCidrs);
  if (routes_ && *routes_ == want) return true;
  auto changed = controller::syncRoutes(want);
  if (!changed) {
    metrics_.reconcileFailed();
    logError(changed.error().message, "event=routes-failed node=" + options_.node);
    return false;
  }
  routes_ = want;
  if (changed->added || changed->removed)
    logInfo("routes to other nodes' pod subnets updated",
            "event=routes added=" + std::to_string(changed->added) +
                " removed=" + std::to_string(changed->removed) + " routes=" + std::to_string(want.size()));
  return true;
}

int Controller::run() {
  const int stopFd = options_.stopFd;
  if (options_.revokeConntrack) revoker_ = std::make_unique<Revoker>(metrics_);

  if (options_.once) {
    // A directory is whole at once; the API's lists take a moment: wait (bounded) until the source is
    // complete.
    bool blocked = false, ok = false;
    if (auto failed = source_->start()) {
      logError(failed->message, "event=watch-failed");
    } else {
      auto deadline = Clock::now() + source_->completionWait();
      while (!(ok = syncOnce(blocked)) && blocked && Clock::now() < deadline)
        if (source_->wait(std::chrono::milliseconds{100}, {stopFd, -1}) == Source::Wake::kStop) break;
    }
    return ok ? 0 : (blocked ? 2 : 1);
  }

  if (options_.flowLog) {
    if (!options_.flowLogPath.empty()) {
      auto file = FlowFile::open(options_.flowLogPath, options_.flowLogMaxBytes, options_.flowLogKeep);
      if (!file) {
        logError(file.error().message, "event=flow-log-failed");
        return 1;
      }
      flowFile_ = std::move(*file);
    }
    // Enforcement never waits for the log: without its group (another reader holds it in this network
    // namespace) the rules still log, nobody records, and the controller says so and enforces.
    auto reader = FlowReader::start(options_.flowLog->group, options_.flowLog->snaplen, flows_);
    if (!reader) {
      logError(reader.error().message + "; enforcing without a flow log", "event=flow-log-failed");
    } else {
      flowReader_ = std::move(*reader);
      nextFlush_ = Clock::now() + options_.flowFlush;
      // What the rules offered before the reader bound its group was never ours to read.
      auto offered = backend_->counterPackets("nftpol", render::kFlowLogCounter);
      offeredAtStart_ = offered ? *offered : 0;
      logInfo("flow log: reading what the policies decide",
              "event=flow-log group=" + std::to_string(options_.flowLog->group) + " allowed=" +
                  (options_.flowLog->allowed ? "true" : "false") + " path=" + options_.flowLogPath);
    }
  }
  std::unique_ptr<HttpServer> http;
  if (!options_.listen.empty()) {
    auto started = HttpServer::start(options_.listen, metrics_, options_.flowLog ? &feed_ : nullptr);
    if (!started) {
      logError(started.error().message, "event=http-failed");
      return 1;
    }
    http = std::move(*started);
    logInfo("serving /healthz /readyz /metrics", "event=http listen=" + options_.listen);
  }
  if (!options_.cniSocket.empty()) {
    auto started = CniServer::start(options_.cniSocket);
    if (!started) {
      logError("CNI handoff: " + started.error().message, "event=cni-socket-failed");
      return 1;
    }
    cni_ = std::move(*started);
    logInfo("taking pods from nftpol-bridge; addresses not programmed are closed",
            "event=cni-socket path=" + options_.cniSocket);
  }
  if (auto failed = source_->start()) {
    logError(failed->message, "event=watch-failed");
    return 1;
  }
  logInfo("watching", "event=start " + source_->describe() + " node=" + options_.node);

  auto backoff = kMinBackoff;
  bool pending = true;
  for (;;) {
    metrics_.loopTurned();
    pending = takeHandoffs() || pending;
    bool committed = false;
    if (pending) {
      bool blocked = false;
      if (syncOnce(blocked)) {
        pending = false;
        committed = true;
        backoff = kMinBackoff;
      } else if (!blocked) {
        logWarn("retrying", "event=retry in_ms=" + std::to_string(backoff.count()));
      }
    }
    answerHandoffs(committed);
    auto wake = waitForWork(pending ? backoff : kIdle);
    if (wake == Source::Wake::kStop) break;
    if (wake == Source::Wake::kHandoff && !pending) continue;  // taken at the top; nothing else changed
    if (wake == Source::Wake::kTimeout) {
      if (pending) backoff = std::min(backoff * 2, kMaxBackoff);
      if (!pending) {  // the periodic resync: a fresh dump, and the table rebuilt from every object
        backend_->forget();
        loaded_ = false;
        routes_.reset();
      }
    }
    pending = true;
  }
  // Unanswered handoffs are closed with the socket: their plugins fail ADD with code 11 and the runtime
  // retries against the next controller.
  cni_.reset();
  if (flowReader_) flushFlows();  // what was logged before the stop is not lost
  logInfo("stopping; the rules stay in place", "event=stop");
  return 0;
}

}  // namespace nftpol::controller

namespace nftpol::controller {

void Controller::derive(const policy::ObjectRef& ref) {
  if (ref.kind != policy::Pod::kKind) {
    effective_.copyFrom(source_->state(), ref);
    return;
  }
  auto name = policy::ObjectName::of(ref.key);
  const policy::Pod* pod = source_->state().findPod(name.ns, name.name);
  if (!pod) {
    effective_.remove(ref.kind, ref.key);
  } else if (auto o = book_.overlay(*pod, options_.node)) {
    effective_.upsert(std::move(*o));
  } else {
    effective_.upsert(*pod);
  }
}

void Controller::noteBookChange(const BookChange& change) {
  bookDirty_.insert(bookDirty_.end(), change.pods.begin(), change.pods.end());
  bookAddresses_.insert(bookAddresses_.end(), change.addresses.begin(), change.addresses.end());
}

bool Controller::takeHandoffs() {
  if (!cni_) return false;
  bool changed = false;
  auto now = Clock::now();
  for (auto& in : cni_->take()) {
    const auto& r = in.request;
    if (r.op == handoff::Op::kStatus) {
      if (metrics_.ready())
        cni_->answer(
            in.id, {Reply::Status::kReady, "enforcing generation " + std::to_string(source_->generation())});
      else
        cni_->answer(in.id, {Reply::Status::kRefused, "the first sync has not committed yet"});
      continue;
    }
    std::vector<IpAddress> addresses;
    for (const auto& a : r.addresses)
      addresses.push_back(a.address);
    // A DEL's addresses lose their connections at its answer (forgetConnections), and nothing else: it owes
    // no pass either.
    if (r.op == handoff::Op::kAdd && !closedUntilNow(r)) revocationOwed_ = true;
    if (r.op == handoff::Op::kAdd) {
      for (const auto& a : r.addresses)
        if (auto subnet = Cidr::parse(a.address.toString() + "/" + std::to_string(a.prefixLength)))
          book_.learnSubnet(*subnet);
      noteBookChange(book_.bind(Binding{.podKey = r.podKey(),
                                        .podUid = r.podUid,
                                        .containerId = r.containerId,
                                        .ifname = r.ifname,
                                        .addresses = addresses}));
    } else {
      noteBookChange(book_.release(r.containerId, r.ifname, addresses, now));
    }
    auto wait = std::min(options_.pendingWait, r.wait - std::min(r.wait, kAnswerMargin));
    waiting_.push_back({std::move(in), now + wait, false});
    changed = true;
  }
  return changed;
}

// Whether binding `add` can only open: a pod that held no address yet, taking addresses of the subnets the
// last commit closed that nobody held. No connection from or to such an address got past the closing rule,
// and a pod joining peer sets changes only what involves its own addresses, so nothing established can become
// denied and the commit needs no revocation pass. Anything else (a repeated ADD, an address taken over from a
// stale object, one outside the closed subnets) owes one.
bool Controller::closedUntilNow(const handoff::Request& add) const {
  if (!loaded_) return false;
  auto name = policy::ObjectName::of(add.podKey());
  if (const policy::Pod* pod = effective_.findPod(name.ns, name.name); pod && !pod->ips.empty()) return false;
  for (const auto& a : add.addresses) {
    const IpAddress& ip = a.address;
    if (book_.holds(ip) || std::none_of(committedSubnets_.begin(), committedSubnets_.end(),
                                        [&](const Cidr& c) { return c.contains(ip); }))
      return false;
  }
  for (const auto& pod : effective_.pods())
    for (const auto& ip : pod.ips)
      if (std::any_of(add.addresses.begin(), add.addresses.end(),
                      [&](const InterfaceAddress& a) { return a.address == ip; }))
        return false;
  return true;
}

// After a sync (committed: it succeeded) and whenever a deadline passes: every request the kernel now holds
// is answered, and those whose time is up are answered with what they have.
void Controller::answerHandoffs(bool committed) {
  if (!cni_ || waiting_.empty()) return;
  auto now = Clock::now();
  std::vector<IpAddress> forget;
  if (committed)
    for (auto& w : waiting_) {
      w.committed = true;
      if (w.incoming.request.op == handoff::Op::kDel)
        for (const auto& a : w.incoming.request.addresses)
          forget.push_back(a.address);
    }
  if (!forget.empty() && options_.revokeConntrack) {
    // Before DEL is answered: once it is, host-local may give the address to the next pod.
    auto gone = conntrack_.forgetConnections(forget);
    if (!gone) {
      logWarn(gone.error().message, "event=conntrack-failed");
      if (revoker_) revoker_->submit(reconciler_.table());  // the pass the DEL did not owe, after all
    }
  }
  std::erase_if(waiting_, [&](const Waiting& w) {
    const auto& r = w.incoming.request;
    std::string who = "pod=" + r.podKey() + " container=" + r.containerId;
    auto answer = [&](const Reply& reply) {
      cni_->answer(w.incoming.id, reply);
      logInfo(std::string("CNI ") + handoff::toString(r.op) + ": " + reply.message,
              "event=cni-" + std::string(r.op == handoff::Op::kAdd ? "add" : "del") + " " + who + " status=" +
                  handoff::toString(reply.status) + " duration_ms=" + msText(now - w.incoming.received));
      return true;
    };
    if (w.committed && r.op == handoff::Op::kDel)
      return answer({Reply::Status::kReleased, "addresses closed"});
    if (w.committed) {
      auto name = policy::ObjectName::of(r.podKey());
      const policy::Pod* pod = effective_.findPod(name.ns, name.name);
      bool programmed = pod && pod->takesPart() && pod->nodeName == options_.node &&
                        std::all_of(r.addresses.begin(), r.addresses.end(), [&](const InterfaceAddress& a) {
                          return std::find(pod->ips.begin(), pod->ips.end(), a.address) != pod->ips.end();
                        });
      if (programmed) return answer({Reply::Status::kProgrammed, "policies of " + r.podKey() + " enforced"});
      if (now >= w.deadline)
        return answer({Reply::Status::kPending, "the controller has not seen pod " + r.podKey() +
                                                    " yet; its addresses stay closed until it does"});
      return false;
    }
    if (now >= w.deadline)
      return answer({Reply::Status::kRefused, lastFailure_.empty()
                                                  ? "the controller has not committed a complete state yet"
                                                  : lastFailure_});
    return false;
  });
}

std::optional<Clock::time_point> Controller::nextHandoffDeadline() const {
  std::optional<Clock::time_point> next;
  for (const auto& w : waiting_)
    if (!next || w.deadline < *next) next = w.deadline;
  return next;
}

// The source's wait, cut short for a handoff's deadline, which is answered without ending the wait.
Source::Wake Controller::waitForWork(std::chrono::milliseconds timeout) {
  auto until = Clock::now() + timeout;
  Interrupts interrupts{options_.stopFd, cni_ ? cni_->fd() : -1};
  for (bool first = true;; first = false) {
    auto now = Clock::now();
    auto due = nextHandoffDeadline();
    if (flowReader_ && (!due || nextFlush_ < *due)) due = nextFlush_;
    bool cut = due && *due < until;
    auto left = std::chrono::ceil<std::chrono::milliseconds>((cut ? *due : until) - now);
    if (first && !cut) left = timeout;  // the loop's own timeout, as asked
    auto wake = source_->wait(std::max(left, std::chrono::milliseconds{0}), interrupts);
    if (flowReader_ && Clock::now() >= nextFlush_) flushFlows();
    if (wake != Source::Wake::kTimeout || !cut) return wake;
    answerHandoffs(false);
    if (Clock::now() >= until) return wake;
  }
}

void Controller::flushFlows() {
  nextFlush_ = Clock::now() + options_.flowFlush;
  auto lost = flowReader_->losses();
  // Offered to the log rules since the reader started, less what the group numbered, is what the rules' rate
  // limits held back. A packet numbered can wait in the group's queue up to its batch delay (100 ms) before
  // it is read, so the offered count compared is one at least 500 ms old: every packet it counted has been
  // read by now, and the total never runs ahead of the truth (it lags it by half a second of logging).
  if (auto offered = backend_->counterPackets("nftpol", render::kFlowLogCounter);
      offered && offeredAtStart_) {
    auto now = Clock::now();
    if (*offered < *offeredAtStart_) {  // the table was made anew, and its counter with it
      offeredAtStart_ = 0;
      offered_.clear();
    }
    offered_.emplace_back(now, *offered);
    std::optional<uint64_t> settled;
    while (!offered_.empty() && now - offered_.front().first >= std::chrono::milliseconds{500}) {
      settled = offered_.front().second;
      offered_.pop_front();
    }
    if (settled) {
      offered_.emplace_front(now - std::chrono::milliseconds{500}, *settled);  // still the newest settled one
      uint64_t since = *settled - *offeredAtStart_;
      if (since > lost.numbered) rateLimited_ = std::max(rateLimited_, since - lost.numbered);
    }
  }
  metrics_.flowLogLost("rate-limit", rateLimited_);
  metrics_.flowLogLost("sequence-gap", lost.sequenceGaps);
  metrics_.flowLogLost("overrun", lost.overruns);
  metrics_.flowLogLost("unreadable", lost.unreadable);
  metrics_.flowLogLost("aggregates", flows_.overflowed());
  metrics_.flowLogLost("unknown-prefix", flows_.unknownPrefixes());
  auto aggregates = flows_.take();
  if (aggregates.empty()) return;
  if (!flowModel_ || flowModelVersion_ != modelVersion_) {
    flowModel_ = std::make_unique<policy::Compiled>(policy::Compiled::build(enforced()));
    flowServices_ = ServiceIndex(policy::Services::build(enforced()));
    flowAuditModel_.reset();
    flowAuditState_.reset();
    flowModelVersion_ = modelVersion_;
  }
  bool wouldDeny = std::any_of(aggregates.begin(), aggregates.end(),
                               [](const FlowAggregate& a) { return a.decision.audit; });
  if (wouldDeny && !flowAuditModel_) {
    flowAuditState_ = std::make_unique<policy::ClusterState>(enforced());
    for (policy::NetworkPolicy p :
         std::vector(flowAuditState_->policies()))  // a copy: upsert changes the list
      if (p.audit) {
        p.audit = false;
        flowAuditState_->upsert(std::move(p));
      }
    flowAuditModel_ = std::make_unique<policy::Compiled>(policy::Compiled::build(*flowAuditState_));
  }
  auto now = std::chrono::system_clock::now();
  std::vector<FlowRecord> records;
  records.reserve(aggregates.size());
  for (const auto& a : aggregates) {
    records.push_back(attribute(*flowModel_, flowServices_, a, options_.node, now, flowAuditModel_.get()));
    const json::Value& r = records.back().json;
    const json::Value* sideName = r.find("side");
    for (const char* side : {"egress", "ingress"}) {
      const json::Value* s = r.find(side);
      if (!s) continue;
      bool deciding = sideName ? sideName->asString() == side : true;
      if (!deciding) continue;
      auto count = static_cast<uint64_t>(a.count);
      auto name = [](const std::string& key) { return policy::ObjectName::of(key); };
      if (!a.decision.allowed) {
        // A deny names the policies isolating its side; a would-deny the ones in audit mode among them.
        const json::Value* by = s->find(a.decision.audit ? "audit" : "isolatedBy");
        if (by)
          for (const auto& key : by->asArray())
            metrics_.policyVerdicts(records.back().verdict, side, name(key.asString()).ns,
                                    name(key.asString()).name, count);
      } else if (const json::Value* by = s->find("allowedBy")) {
        std::string key = by->find("policy")->asString();
        metrics_.policyVerdicts("allowed", side, name(key).ns, name(key).name, count);
      }
    }
  }
  if (flowFile_)
    if (auto failed = flowFile_->write(records)) logError(failed->message, "event=flow-log-failed");
  feed_.publish(records);
}

}  // namespace nftpol::controller
