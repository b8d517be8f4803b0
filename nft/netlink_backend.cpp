#include <endian.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/common.h>
#include <libnftnl/gen.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>

#include "messages.h"
#include "nftpol/netlink.h"
#include "nftpol/nft/backend.h"

namespace nftpol::nft {

struct NetlinkBackend::Socket {
  Netlink nl;
};

namespace {

constexpr size_t kElementsPerMessage = 512;  // keeps every message well inside one batch page
constexpr uint32_t kBatchPage = 1 << 20;
constexpr uint32_t kBatchOverrun = 1 << 18;
constexpr int kAckTimeoutMs = 5000;
// Rules are echoed (for their handles) only in transactions of up to this many messages: every echo must fit
// in the receive buffer beside the ACKs until the commit is read, and the kernel builds each echo as it would
// a dump of the rule, which a first sync of thousands of rules would pay for in its commit time (the batch
// against `nft -f` went from about 0.4 to 0.5). A chain whose handles are unknown is flushed and refilled
// the next time it changes, echoed then, and edited in place from then on.
constexpr size_t kEchoLimit = 1024;
constexpr size_t kEchoBytes = 4096;  // the socket memory an echoed rule may take

Error failed(const std::string& what, int err) {
  return errnoError("netlink: " + what, err);
}

struct DumpState {
  const std::string* table;
  KernelView* view;
  std::vector<std::string> setNames;
};

int onCounter(const nlmsghdr* nlh, void* data) {
  auto* st = static_cast<DumpState*>(data);
  ObjPtr o(nftnl_obj_alloc());
  if (nftnl_obj_nlmsg_parse(nlh, o.get()) < 0) return MNL_CB_ERROR;
  if (*st->table != nftnl_obj_get_str(o.get(), NFTNL_OBJ_TABLE) ||
      nftnl_obj_get_u32(o.get(), NFTNL_OBJ_FAMILY) != kFamily ||
      nftnl_obj_get_u32(o.get(), NFTNL_OBJ_TYPE) != NFT_OBJECT_COUNTER)
    return MNL_CB_OK;
  st->view->counters[nftnl_obj_get_str(o.get(), NFTNL_OBJ_NAME)] = "";
  return MNL_CB_OK;
}

int onChain(const nlmsghdr* nlh, void* data) {
  auto* st = static_cast<DumpState*>(data);
  ChainPtr c(nftnl_chain_alloc());
  if (nftnl_chain_nlmsg_parse(nlh, c.get()) < 0) return MNL_CB_ERROR;
  if (*st->table != nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TABLE) ||
      nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_FAMILY) != kFamily)
    return MNL_CB_OK;
  ChainView& cv = st->view->chains[nftnl_chain_get_str(c.get(), NFTNL_CHAIN_NAME)];
  if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_HOOKNUM)) {
    auto hook = hookOf(nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_HOOKNUM));
    auto type = chainTypeOf(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TYPE));
    cv.base = BaseChain{.type = type.value_or(ChainType::kFilter),
                        .hook = hook.value_or(Hook::kForward),
                        .priority = static_cast<Priority>(nftnl_chain_get_s32(c.get(), NFTNL_CHAIN_PRIO)),
                        .policy = nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_POLICY) == NF_ACCEPT
                                      ? ChainPolicy::kAccept
                                      : ChainPolicy::kDrop};
    cv.foreignBase = !hook || !type;
  }
  return MNL_CB_OK;
}

int onSet(const nlmsghdr* nlh, void* data) {
  auto* st = static_cast<DumpState*>(data);
  SetPtr s(nftnl_set_alloc());
  if (nftnl_set_nlmsg_parse(nlh, s.get()) < 0) return MNL_CB_ERROR;
  if (*st->table != nftnl_set_get_str(s.get(), NFTNL_SET_TABLE)) return MNL_CB_OK;
  std::string name = nftnl_set_get_str(s.get(), NFTNL_SET_NAME);
  SetView& v = st->view->sets[name];
  v.flags = nftnl_set_get_u32(s.get(), NFTNL_SET_FLAGS) &
            (NFT_SET_INTERVAL | NFT_SET_MAP | NFT_SET_TIMEOUT | NFT_SET_EVAL);
  v.keyType = nftnl_set_get_u32(s.get(), NFTNL_SET_KEY_TYPE);
  v.keyLength = nftnl_set_get_u32(s.get(), NFTNL_SET_KEY_LEN);
  if (nftnl_set_is_set(s.get(), NFTNL_SET_TIMEOUT))
    v.timeoutMs = nftnl_set_get_u64(s.get(), NFTNL_SET_TIMEOUT);
  // The entries of a set the data path fills (session affinity) are the kernel's, not ours to compare.
  if (!(v.flags & NFT_SET_EVAL)) st->setNames.push_back(name);
  return MNL_CB_OK;
}

int onElements(const nlmsghdr* nlh, void* data) {
  auto* v = static_cast<SetView*>(data);
  SetPtr s(nftnl_set_alloc());
  if (nftnl_set_elems_nlmsg_parse(nlh, s.get()) < 0) return MNL_CB_ERROR;
  nftnl_set_elems_iter* it = nftnl_set_elems_iter_create(s.get());
  for (nftnl_set_elem* e = nftnl_set_elems_iter_next(it); e; e = nftnl_set_elems_iter_next(it)) {
    ElementTuple t;
    uint32_t len = 0;
    const void* key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
    t.key.assign(static_cast<const char*>(key), len);
    if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS))
      t.flags = nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS);
    if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN))
      t.chain = nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN);
    v->elements.push_back(std::move(t));
  }
  nftnl_set_elems_iter_destroy(it);
  return MNL_CB_OK;
}

int onRule(const nlmsghdr* nlh, void* data) {
  auto* st = static_cast<DumpState*>(data);
  RulePtr r(nftnl_rule_alloc());
  if (nftnl_rule_nlmsg_parse(nlh, r.get()) < 0) return MNL_CB_ERROR;
  if (*st->table != nftnl_rule_get_str(r.get(), NFTNL_RULE_TABLE)) return MNL_CB_OK;
  ChainView& c = st->view->chains[nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN)];
  c.rules.push_back(ruleSignature(r.get()));
  c.handles.push_back(nftnl_rule_get_u64(r.get(), NFTNL_RULE_HANDLE));
  return MNL_CB_OK;
}

}  // namespace

namespace {

Result<std::unique_ptr<NetlinkBackend::Socket>> openSocket() {
  auto nl = Netlink::open(NETLINK_NETFILTER);
  if (!nl) return Error{"nf_tables " + nl.error().message, nl.error().errnum};
  return std::make_unique<NetlinkBackend::Socket>(NetlinkBackend::Socket{std::move(*nl)});
}

}  // namespace

Result<std::unique_ptr<NetlinkBackend>> NetlinkBackend::open() {
  auto s = openSocket();
  if (!s) return s.error();
  std::unique_ptr<NetlinkBackend> b(new NetlinkBackend());
  b->socket_ = std::move(*s);
  return b;
}

// After a failed exchange the socket may still hold replies to it (lost ACKs, the rest of a dump), which
// would be read as the answers to the next request: start the next one on a fresh socket, from a fresh dump.
void NetlinkBackend::recover() {
  committed_.reset();
  if (auto s = openSocket()) socket_ = std::move(*s);
}

Result<Applied> NetlinkBackend::apply(const Table& desired) {
  auto r = applyOnce(desired, nullptr);
  if (!r) recover();
  return r;
}

Result<Applied> NetlinkBackend::applyChanged(const Table& desired, const std::set<std::string>& changed) {
  auto r = applyOnce(desired, &changed);
  if (!r) recover();
  return r;
}

NetlinkBackend::~NetlinkBackend() = default;

Result<KernelView> NetlinkBackend::read(const std::string& table) {
  Netlink& nl = socket_->nl;
  const std::string what = "netlink: reading table inet " + table;
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  // Four dumps (chains, sets, their elements, rules) that must all see one state of the ruleset: one the
  // kernel interrupted starts the whole read again.
  for (int attempt = 0; attempt < Netlink::kDumpRetries; ++attempt) {
    KernelView view;
    DumpState st{&table, &view, {}};
    Table named;
    named.name = table;
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETTABLE, NFPROTO_INET, 0, 0);
    nftnl_table_nlmsg_build_payload(nlh, buildTable(named).get());
    if (auto e = nl.request(nlh, what)) {
      if (e->errnum == ENOENT) return view;  // no table: nothing of ours in this namespace
      return *e;
    }
    view.exists = true;

    auto dump = [&](uint16_t type, mnl_cb_t cb, void* data, auto&& payload) {
      nlmsghdr* h = nftnl_nlmsg_build_hdr(buf.data(), type, NFPROTO_INET, 0, 0);
      payload(h);
      return nl.dumpOnce(h, what, cb, data);
    };
    auto err = dump(NFT_MSG_GETCHAIN, onChain, &st, [&](nlmsghdr*) {});
    if (!err)
      err = dump(NFT_MSG_GETOBJ, onCounter, &st, [&](nlmsghdr* h) {
        Table t;
        t.name = table;
        nftnl_obj_nlmsg_build_payload(h, buildCounter(t, "").get());
      });
    if (!err)
      err = dump(NFT_MSG_GETSET, onSet, &st, [&](nlmsghdr* h) {
        SetPtr f(nftnl_set_alloc());
        nftnl_set_set_str(f.get(), NFTNL_SET_TABLE, table.c_str());
        nftnl_set_nlmsg_build_payload(h, f.get());
      });
    for (size_t i = 0; !err && i < st.setNames.size(); ++i) {
      SetView& v = view.sets[st.setNames[i]];
      err = dump(NFT_MSG_GETSETELEM, onElements, &v, [&](nlmsghdr* h) {
        SetPtr f(nftnl_set_alloc());
        nftnl_set_set_str(f.get(), NFTNL_SET_TABLE, table.c_str());
        nftnl_set_set_str(f.get(), NFTNL_SET_NAME, st.setNames[i].c_str());
        nftnl_set_elems_nlmsg_build_payload(h, f.get());
      });
      std::vector<ElementTuple>& list = v.elements.mutate();
      std::sort(list.begin(), list.end());
    }
    if (!err)
      err = dump(NFT_MSG_GETRULE, onRule, &st, [&](nlmsghdr* h) {
        RulePtr f(nftnl_rule_alloc());
        nftnl_rule_set_str(f.get(), NFTNL_RULE_TABLE, table.c_str());
        nftnl_rule_nlmsg_build_payload(h, f.get());
      });
    if (err && err->errnum == EINTR) continue;  // the ruleset changed while we read it: read it again
    if (err) return *err;
    return view;
  }
  return Error{
      what + ": it kept changing while being read (" + std::to_string(Netlink::kDumpRetries) + " attempts)",
      EINTR};
}

namespace {

// What a DELRULE names: every rule of a chain (a flush), or the one with `handle`.
RulePtr ruleIn(const Table& table, const std::string& chain, uint64_t handle = 0) {
  RulePtr r(nftnl_rule_alloc());
  nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, kFamily);
  nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, table.name.c_str());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, chain.c_str());
  if (handle != 0) nftnl_rule_set_u64(r.get(), NFTNL_RULE_HANDLE, handle);
  return r;
}

// The handle in the kernel's echo of a rule it made: only that attribute is read (a full parse of the rule's
// expressions, for every rule of a large commit, would cost more than the commit).
uint64_t echoedHandle(const nlmsghdr* nlh) {
  uint64_t handle = 0;
  auto onAttr = [](const nlattr* attr, void* data) -> int {
    if (mnl_attr_get_type(attr) == NFTA_RULE_HANDLE && mnl_attr_validate(attr, MNL_TYPE_U64) >= 0)
      *static_cast<uint64_t*>(data) = be64toh(mnl_attr_get_u64(attr));
    return MNL_CB_OK;
  };
  mnl_attr_parse(nlh, sizeof(nfgenmsg), onAttr, &handle);
  return handle;
}

// One transaction under construction: every message asks for an ACK, and remembers what it was for, so that a
// kernel error can be reported against the policy that produced the message.
class Batch {
 public:
  explicit Batch(Netlink& nl) : nl_(nl), b_(nftnl_batch_alloc(kBatchPage, kBatchOverrun)) {
    nftnl_batch_begin(static_cast<char*>(nftnl_batch_buffer(b_)), nl_.nextSeq());
    nftnl_batch_update(b_);
  }
  ~Batch() { nftnl_batch_free(b_); }
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  nlmsghdr* add(uint16_t type, uint16_t flags, std::string what) {
    uint32_t seq = nl_.nextSeq();
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(static_cast<char*>(nftnl_batch_buffer(b_)), type, NFPROTO_INET,
                                          flags | NLM_F_ACK, seq);
    what_[seq] = std::move(what);
    return nlh;
  }
  void done() { nftnl_batch_update(b_); }
  size_t messages() const { return what_.size(); }
  // The message just added asks the kernel to echo what it made (NLM_F_ECHO): for a rule, its handle.
  uint32_t echo(nlmsghdr* nlh) {
    nlh->nlmsg_flags |= NLM_F_ECHO;
    echoed_[nlh->nlmsg_seq] = 0;
    return nlh->nlmsg_seq;
  }
  // The handle of the rule that the message `seq` added, once sent; 0 when the kernel did not echo it.
  uint64_t handleOf(uint32_t seq) const {
    auto it = echoed_.find(seq);
    return it == echoed_.end() ? 0 : it->second;
  }

  // Sends the batch and waits for every ACK. Errors name what failed; the kernel then applied nothing.
  Result<size_t> send() {
    nftnl_batch_end(static_cast<char*>(nftnl_batch_buffer(b_)), nl_.nextSeq());
    nftnl_batch_update(b_);
    int n = nftnl_batch_iovec_len(b_);
    std::vector<iovec> iov(static_cast<size_t>(n));
    nftnl_batch_iovec(b_, iov.data(), n);
    size_t total = 0;
    for (const auto& v : iov)
      total += v.iov_len;
    int fd = mnl_socket_get_fd(nl_.socket());
    // Large batches must go in one sendmsg.
    if (auto e = nl_.sizeSendBuffer(static_cast<int>(total + (1 << 16)))) return *e;
    // Room for every ACK (each costs about a kilobyte of socket memory), so none is dropped with ENOBUFS
    // while we read the first ones.
    int rcvbuf = static_cast<int>(
        std::clamp<size_t>(what_.size() * 2048 + echoed_.size() * kEchoBytes, 1 << 18, 1 << 26));
    if (auto e = nl_.sizeReceiveBuffer(rcvbuf)) return *e;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    msghdr msg{};
    msg.msg_name = &kernel;
    msg.msg_namelen = sizeof kernel;
    msg.msg_iov = iov.data();
    msg.msg_iovlen = iov.size();
    if (sendmsg(fd, &msg, 0) < 0) return failed("sending the transaction", errno);

    std::vector<std::string> errors;
    int firstErrno = 0;
    size_t acked = 0;
    std::vector<char> buf(1 << 16);
    while (acked < what_.size()) {
      // The answers are mostly there already (the kernel acknowledges a batch when it has committed it): read
      // without waiting, and wait (bounded) only when none is.
      ssize_t len = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (len < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, errors.empty() ? kAckTimeoutMs : 100) <= 0) break;
        continue;
      }
      if (len < 0) return failed("reading acknowledgements", errno);
      int remaining = static_cast<int>(len);
      for (auto* nlh = reinterpret_cast<nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, remaining);
           nlh = mnl_nlmsg_next(nlh, &remaining)) {
        if (nlh->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE)) {
          auto it = echoed_.find(nlh->nlmsg_seq);
          if (it != echoed_.end()) it->second = echoedHandle(nlh);
          continue;
        }
        if (nlh->nlmsg_type != NLMSG_ERROR) continue;
        ++acked;
        auto* e = static_cast<nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        if (e->error != 0) {
          if (!firstErrno) firstErrno = -e->error;
          auto it = what_.find(nlh->nlmsg_seq);
          errors.push_back((it == what_.end() ? std::string("batch") : it->second) + ": " +
                           std::strerror(-e->error));
        }
      }
    }
    if (!errors.empty()) {
      std::string text = "netlink: the kernel refused the transaction, so nothing of it was applied:";
      for (const auto& e : errors)
        text += "\n  " + e;
      return Error{text, firstErrno};
    }
    if (acked < what_.size())
      return Error{"netlink: the kernel acknowledged " + std::to_string(acked) + " of " +
                   std::to_string(what_.size()) + " messages"};
    return what_.size();
  }

 private:
  Netlink& nl_;
  nftnl_batch* b_;
  std::map<uint32_t, std::string> what_;
  std::map<uint32_t, uint64_t> echoed_;
};

void addElements(Batch& batch, const Table& table, const std::string& set,
                 const std::vector<ElementTuple>& all, bool remove) {
  for (size_t i = 0; i < all.size(); i += kElementsPerMessage) {
    std::vector<ElementTuple> part(all.begin() + i,
                                   all.begin() + std::min(all.size(), i + kElementsPerMessage));
    nlmsghdr* nlh =
        batch.add(remove ? NFT_MSG_DELSETELEM : NFT_MSG_NEWSETELEM, remove ? 0 : NLM_F_CREATE,
                  (remove ? "delete " : "add ") + std::to_string(part.size()) + " element(s) of set " + set);
    nftnl_set_elems_nlmsg_build_payload(nlh, buildElements(table, set, part).get());
    batch.done();
  }
}

}  // namespace

Result<std::vector<NetlinkBackend::HeldRule>> NetlinkBackend::heldRules(const std::string& table) {
  struct State {
    const std::string* table;
    std::vector<HeldRule> rules;
    std::map<std::string, size_t> perChain;
  } st{&table, {}, {}};
  auto onHeld = [](const nlmsghdr* nlh, void* data) -> int {
    auto* st = static_cast<State*>(data);
    RulePtr r(nftnl_rule_alloc());
    if (nftnl_rule_nlmsg_parse(nlh, r.get()) < 0) return MNL_CB_ERROR;
    if (*st->table != nftnl_rule_get_str(r.get(), NFTNL_RULE_TABLE)) return MNL_CB_OK;
    HeldRule h{.chain = nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN),
               .handle = nftnl_rule_get_u64(r.get(), NFTNL_RULE_HANDLE)};
    h.index = st->perChain[h.chain]++;
    if (nftnl_rule_is_set(r.get(), NFTNL_RULE_USERDATA)) {
      uint32_t len = 0;
      const void* data = nftnl_rule_get_data(r.get(), NFTNL_RULE_USERDATA, &len);
      auto onComment = [](const nftnl_udata* attr, void* out) -> int {
        if (nftnl_udata_type(attr) == NFTNL_UDATA_RULE_COMMENT)
          *static_cast<std::string*>(out) = static_cast<const char*>(nftnl_udata_get(attr));
        return 0;
      };
      nftnl_udata_parse(data, len, onComment, &h.comment);
    }
    st->rules.push_back(std::move(h));
    return MNL_CB_OK;
  };
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* h = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETRULE, NFPROTO_INET, 0, 0);
  RulePtr f(nftnl_rule_alloc());
  nftnl_rule_set_str(f.get(), NFTNL_RULE_TABLE, table.c_str());
  nftnl_rule_nlmsg_build_payload(h, f.get());
  if (auto e = socket_->nl.dump(h, "netlink: reading the rules of table inet " + table, onHeld, &st, [&] {
        st.rules.clear();
        st.perChain.clear();
      }))
    return *e;
  return st.rules;
}

std::optional<Error> NetlinkBackend::addTimedElements(const std::string& table, const Set& set,
                                                      uint64_t timeoutMs) {
  Table t;
  t.name = table;
  Set plain = set;
  plain.dynamic = false;  // a dynamic set's view carries no elements: encode the given ones
  SetPtr s = buildElements(t, set.name, setViewOf(plain).elements);
  nftnl_set_elems_iter* it = nftnl_set_elems_iter_create(s.get());
  for (nftnl_set_elem* e = nftnl_set_elems_iter_next(it); e; e = nftnl_set_elems_iter_next(it))
    nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, timeoutMs);
  nftnl_set_elems_iter_destroy(it);
  Batch batch(socket_->nl);
  nftnl_set_elems_nlmsg_build_payload(
      batch.add(NFT_MSG_NEWSETELEM, NLM_F_CREATE, "add timed elements to set " + set.name), s.get());
  batch.done();
  auto sent = batch.send();
  if (!sent) return sent.error();
  return std::nullopt;
}

Result<uint64_t> NetlinkBackend::counterPackets(const std::string& table, const std::string& name) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETOBJ, kFamily, 0, 0);
  Table t;
  t.name = table;
  nftnl_obj_nlmsg_build_payload(nlh, buildCounter(t, name).get());
  std::optional<uint64_t> packets;
  auto onObj = [](const nlmsghdr* h, void* data) -> int {
    ObjPtr o(nftnl_obj_alloc());
    if (nftnl_obj_nlmsg_parse(h, o.get()) >= 0 && nftnl_obj_is_set(o.get(), NFTNL_OBJ_CTR_PKTS))
      *static_cast<std::optional<uint64_t>*>(data) = nftnl_obj_get_u64(o.get(), NFTNL_OBJ_CTR_PKTS);
    return MNL_CB_OK;
  };
  if (auto e = socket_->nl.request(nlh, "netlink: reading counter " + name, onObj, &packets)) return *e;
  if (!packets) return Error{"netlink: reading counter " + name + ": no packet count in the answer", EPROTO};
  return *packets;
}

Result<uint32_t> NetlinkBackend::generation() {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETGEN, NFPROTO_UNSPEC, 0, 0);
  uint32_t id = 0;
  auto onGen = [](const nlmsghdr* h, void* data) -> int {
    nftnl_gen* g = nftnl_gen_alloc();
    if (nftnl_gen_nlmsg_parse(h, g) >= 0) *static_cast<uint32_t*>(data) = nftnl_gen_get_u32(g, NFTNL_GEN_ID);
    nftnl_gen_free(g);
    return MNL_CB_OK;
  };
  if (auto e = socket_->nl.request(nlh, "netlink: reading the ruleset generation", onGen, &id)) return *e;
  return id;
}

namespace {

// The handles of `want`'s rules after the plan's commit: those of `current` where a chain kept its rules,
// the echoed ones where rules were added, each edit carried out as the kernel did. A chain with a rule whose
// handle did not come back keeps none (it is flushed and refilled when it next changes).
template <typename HandleOf>
void learnHandles(KernelView& want, const KernelView& current, const Plan& p,
                  const std::vector<std::vector<uint32_t>>& ruleSeqs, HandleOf handleOf) {
  std::map<std::string, std::vector<uint64_t>> held;
  for (const auto& [name, c] : current.chains)
    if (c.knowsHandles() || c.rules.empty()) held[name] = c.handles;
  for (size_t i = 0; i < p.steps.size(); ++i) {
    const Step& step = p.steps[i];
    auto it = held.find(step.name);
    switch (step.kind) {
      case Step::Kind::kDeleteTable:
        held.clear();
        break;
      case Step::Kind::kAddChain:
      case Step::Kind::kFlushChain:
        held[step.name].clear();
        break;
      case Step::Kind::kDeleteChain:
        held.erase(step.name);
        break;
      case Step::Kind::kDeleteRule:
        if (it != held.end()) std::erase(it->second, step.handle);
        break;
      case Step::Kind::kAddRules:
      case Step::Kind::kInsertRules: {
        if (it == held.end()) break;
        auto at = it->second.end();
        if (step.kind == Step::Kind::kInsertRules && step.handle != 0)
          at = std::find(it->second.begin(), it->second.end(), step.handle);
        std::vector<uint64_t> added;
        for (uint32_t seq : ruleSeqs[i])
          added.push_back(seq ? handleOf(seq) : 0);
        it->second.insert(at, added.begin(), added.end());
        break;
      }
      default:
        break;
    }
  }
  for (auto& [name, c] : want.chains) {
    auto it = held.find(name);
    bool known = it != held.end() && it->second.size() == c.rules.size() &&
                 std::find(it->second.begin(), it->second.end(), 0) == it->second.end();
    c.handles = known ? std::move(it->second) : std::vector<uint64_t>{};
  }
}

}  // namespace

Result<Applied> NetlinkBackend::applyOnce(const Table& desired, const std::set<std::string>* changed) {
  // The promise is against the table of the previous apply, which is what the cache was made from only when
  // that apply got as far as making its view.
  if (!cacheHoldsPrevious_) changed = nullptr;
  cacheHoldsPrevious_ = false;
  auto before = generation();
  if (!before) return before.error();
  KernelView current;
  if (committed_ && committed_->first == *before) {
    current = std::move(committed_->second);  // ours again below, as it is or as the commit changes it
    committed_.reset();
  } else {
    auto dumped = read(desired.name);
    if (!dumped) return dumped.error();
    current = std::move(*dumped);
  }
  KernelView want = viewOf(desired, &signatures_, changed);
  cacheHoldsPrevious_ = true;
  Plan p = plan(current, desired, want);
  if (p.empty()) {
    committed_.emplace(*before, std::move(current));  // the desired table, handles and all
    return Applied{0};
  }
  // A key the set's type does not admit would be sent as bytes of another shape: refuse the table instead
  // (the sets this plan adds elements to are the ones to check; the others are as the kernel took them).
  for (const Step& step : p.steps)
    if (step.kind == Step::Kind::kAddElements)
      if (auto problem = desired.check(step.name)) return Error{"netlink: " + *problem, EINVAL};
  committed_.reset();
  Batch batch(socket_->nl);
  uint32_t setId = 1;
  bool echo = p.messages(desired) <= kEchoLimit;
  std::vector<std::vector<uint32_t>> ruleSeqs(p.steps.size());  // each rule step's messages, in order
  auto addRule = [&](size_t stepIndex, const Chain& chain, size_t i, uint16_t flags, uint64_t before) {
    std::string what = "add rule " + std::to_string(i) + " of chain " + chain.name;
    if (!chain.rules[i].comment.empty()) what += " (" + chain.rules[i].comment + ")";
    nlmsghdr* nlh = batch.add(NFT_MSG_NEWRULE, NLM_F_CREATE | flags, what);
    RulePtr rule = buildRule(desired, chain.name, chain.rules[i]);
    if (before != 0) nftnl_rule_set_u64(rule.get(), NFTNL_RULE_POSITION, before);
    nftnl_rule_nlmsg_build_payload(nlh, rule.get());
    ruleSeqs[stepIndex].push_back(echo ? batch.echo(nlh) : 0);
    batch.done();
  };
  for (size_t stepIndex = 0; stepIndex < p.steps.size(); ++stepIndex) {
    const Step& step = p.steps[stepIndex];
    switch (step.kind) {
      case Step::Kind::kDeleteTable:
        nftnl_table_nlmsg_build_payload(batch.add(NFT_MSG_DELTABLE, 0, "replace table " + desired.name),
                                        buildTable(desired).get());
        break;
      case Step::Kind::kAddTable:
        nftnl_table_nlmsg_build_payload(
            batch.add(NFT_MSG_NEWTABLE, NLM_F_CREATE, "add table " + desired.name),
            buildTable(desired).get());
        break;
      case Step::Kind::kAddSet:
        if (const Set* set = desired.findSet(step.name))
          nftnl_set_nlmsg_build_payload(batch.add(NFT_MSG_NEWSET, NLM_F_CREATE, "add set " + step.name),
                                        buildSet(desired, *set, setId++).get());
        else
          nftnl_set_nlmsg_build_payload(batch.add(NFT_MSG_NEWSET, NLM_F_CREATE, "add map " + step.name),
                                        buildSet(desired, *desired.findMap(step.name), setId++).get());
        break;
      case Step::Kind::kAddChain:
        nftnl_chain_nlmsg_build_payload(batch.add(NFT_MSG_NEWCHAIN, NLM_F_CREATE, "add chain " + step.name),
                                        buildChain(desired, *desired.findChain(step.name)).get());
        break;
      case Step::Kind::kFlushChain:
        nftnl_rule_nlmsg_build_payload(batch.add(NFT_MSG_DELRULE, 0, "flush chain " + step.name),
                                       ruleIn(desired, step.name).get());
        break;
      case Step::Kind::kAddRules: {
        const Chain& chain = *desired.findChain(step.name);
        for (size_t i = 0; i < chain.rules.size(); ++i)
          addRule(stepIndex, chain, i, NLM_F_APPEND, 0);
        continue;
      }
      case Step::Kind::kInsertRules: {
        // Before the rule with the step's handle (the kernel's default without NLM_F_APPEND), in order; at
        // the end when there is none.
        const Chain& chain = *desired.findChain(step.name);
        for (size_t i = step.first; i < step.first + step.count; ++i)
          addRule(stepIndex, chain, i, step.handle ? 0 : NLM_F_APPEND, step.handle);
        continue;
      }
      case Step::Kind::kDeleteRule:
        nftnl_rule_nlmsg_build_payload(
            batch.add(NFT_MSG_DELRULE, 0,
                      "delete rule " + std::to_string(step.handle) + " of chain " + step.name),
            ruleIn(desired, step.name, step.handle).get());
        break;
      case Step::Kind::kDeleteElements:
      case Step::Kind::kAddElements:
        addElements(batch, desired, step.name, step.elements, step.kind == Step::Kind::kDeleteElements);
        continue;
      case Step::Kind::kFlushSet:
        nftnl_set_elems_nlmsg_build_payload(batch.add(NFT_MSG_DELSETELEM, 0, "flush set " + step.name),
                                            buildElements(desired, step.name, {}).get());
        break;
      case Step::Kind::kDeleteChain: {
        Chain gone{.name = step.name};
        nftnl_chain_nlmsg_build_payload(batch.add(NFT_MSG_DELCHAIN, 0, "delete chain " + step.name),
                                        buildChain(desired, gone).get());
        break;
      }
      case Step::Kind::kDeleteSet: {
        Set gone{.name = step.name};
        nftnl_set_nlmsg_build_payload(batch.add(NFT_MSG_DELSET, 0, "delete set " + step.name),
                                      buildSet(desired, gone, 0).get());
        break;
      }
      case Step::Kind::kAddCounter: {
        std::string comment;
        for (const auto& c : desired.counters)
          if (c.name == step.name) comment = c.comment;
        nftnl_obj_nlmsg_build_payload(batch.add(NFT_MSG_NEWOBJ, NLM_F_CREATE, "add counter " + step.name),
                                      buildCounter(desired, step.name, comment).get());
        break;
      }
      case Step::Kind::kDeleteCounter:
        nftnl_obj_nlmsg_build_payload(batch.add(NFT_MSG_DELOBJ, 0, "delete counter " + step.name),
                                      buildCounter(desired, step.name).get());
        break;
    }
    batch.done();
  }
  auto sent = batch.send();
  if (!sent) return sent.error();
  // Trust what we wrote only when ours is the one commit since we read the generation: anything else
  // committed in between (even to another table) makes the next reconcile read the kernel again.
  if (auto after = generation(); after && *after == *before + 1) {
    learnHandles(want, current, p, ruleSeqs, [&](uint32_t seq) { return batch.handleOf(seq); });
    committed_.emplace(*after, std::move(want));
  }
  return Applied{*sent};
}

Result<Applied> NetlinkBackend::merge(const Table& shape) {
  committed_.reset();
  Batch batch(socket_->nl);
  nftnl_table_nlmsg_build_payload(batch.add(NFT_MSG_NEWTABLE, NLM_F_CREATE, "add table " + shape.name),
                                  buildTable(shape).get());
  batch.done();
  uint32_t setId = 1;
  for (const auto& set : shape.sets) {
    nftnl_set_nlmsg_build_payload(batch.add(NFT_MSG_NEWSET, NLM_F_CREATE, "add set " + set.name),
                                  buildSet(shape, set, setId++).get());
    batch.done();
  }
  for (const auto& map : shape.maps) {
    nftnl_set_nlmsg_build_payload(batch.add(NFT_MSG_NEWSET, NLM_F_CREATE, "add map " + map.name),
                                  buildSet(shape, map, setId++).get());
    batch.done();
  }
  for (const auto& chain : shape.chains) {
    nftnl_chain_nlmsg_build_payload(batch.add(NFT_MSG_NEWCHAIN, NLM_F_CREATE, "add chain " + chain.name),
                                    buildChain(shape, chain).get());
    batch.done();
    nftnl_rule_nlmsg_build_payload(batch.add(NFT_MSG_DELRULE, 0, "flush chain " + chain.name),
                                   ruleIn(shape, chain.name).get());
    batch.done();
    for (size_t i = 0; i < chain.rules.size(); ++i) {
      nlmsghdr* nlh = batch.add(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
                                "add rule " + std::to_string(i) + " of chain " + chain.name);
      nftnl_rule_nlmsg_build_payload(nlh, buildRule(shape, chain.name, chain.rules[i]).get());
      batch.done();
    }
  }
  for (const auto& set : shape.sets) {
    auto elements = setViewOf(set).elements;
    if (!elements.empty()) addElements(batch, shape, set.name, elements, false);
  }
  for (const auto& map : shape.maps) {
    auto elements = setViewOf(map).elements;
    if (!elements.empty()) addElements(batch, shape, map.name, elements, false);
  }
  auto sent = batch.send();
  if (!sent) {
    recover();
    return sent.error();
  }
  return Applied{*sent};
}

Result<Applied> NetlinkBackend::remove(const std::string& table) {
  committed_.reset();
  Table named;
  named.name = table;
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  Batch batch(socket_->nl);
  nftnl_table_nlmsg_build_payload(batch.add(NFT_MSG_DELTABLE, 0, "delete table inet " + table),
                                  buildTable(named).get());
  batch.done();
  auto sent = batch.send();
  if (!sent) {
    recover();
    if (sent.error().errnum == ENOENT) return Applied{0};  // no such table: nothing to remove
    return sent.error();
  }
  return Applied{*sent};
}

}  // namespace nftpol::nft
