#include "nftpol/policy/loader.h"

#include "load_fields.h"
#include "nftpol/policy/manifest_files.h"
#include "yaml_tree.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <initializer_list>
#include <span>
#include <thread>

namespace nftpol::policy {
namespace {

using namespace load;

void loadNamespace(Context& cx, const yaml::Node& object, ClusterState& state) {
  auto meta = metadataField(cx, object, "Namespace", false, "");
  if (!meta || cx.errors()) return;
  state.upsert(Namespace{.name = meta->name, .labels = std::move(meta->labels), .where = cx.start()});
}

std::optional<PodPhase> parsePhase(std::string_view s) {
  if (s == "Pending") return PodPhase::kPending;
  if (s == "Running") return PodPhase::kRunning;
  if (s == "Succeeded") return PodPhase::kSucceeded;
  if (s == "Failed") return PodPhase::kFailed;
  if (s == "Unknown") return PodPhase::kUnknown;
  return std::nullopt;
}

void loadContainerPorts(Context& cx, const yaml::Node& containers, const std::string& path, Pod& pod) {
  if (!expectSequence(cx, containers, path)) return;
  for (size_t i = 0; i < containers.size(); ++i) {
    yaml::Node c = containers[i];
    std::string cPath = indexed(path, i);
    if (!expectMap(cx, c, cPath)) continue;
    auto ports = child(c, "ports");
    if (!ports) continue;
    std::string pPath = join(cPath, "ports");
    if (!expectSequence(cx, *ports, pPath)) continue;
    for (size_t j = 0; j < ports->size(); ++j) {
      yaml::Node p = (*ports)[j];
      std::string portPath = indexed(pPath, j);
      if (!expectMap(cx, p, portPath)) continue;
      ContainerPort cp;
      if (auto n = child(p, "name")) {
        if (auto s = stringField(cx, *n, join(portPath, "name"))) {
          if (!isValidPortName(*s)) cx.error(*n, join(portPath, "name"), kPortNameRule);
          cp.name = *s;
        }
      }
      if (auto n = child(p, "containerPort")) {
        if (auto v = portNumber(cx, *n, join(portPath, "containerPort"))) cp.port = *v;
      } else {
        cx.error(p, join(portPath, "containerPort"), "required");
      }
      if (auto n = child(p, "protocol")) {
        if (auto v = protocolField(cx, *n, join(portPath, "protocol"))) cp.protocol = *v;
      }
      pod.ports.push_back(std::move(cp));
    }
  }
}

void loadPod(Context& cx, const yaml::Node& object, ClusterState& state) {
  auto meta = metadataField(cx, object, "Pod", true, "default");
  if (!meta) return;
  Pod pod{.ns = meta->ns, .name = meta->name, .labels = std::move(meta->labels), .where = cx.start()};
  if (auto md = child(object, "metadata"))
    if (auto uid = child(*md, "uid"))
      if (auto s = stringField(cx, *uid, "metadata.uid")) pod.uid = *s;
  if (auto spec = child(object, "spec"); spec && expectMap(cx, *spec, "spec")) {
    if (auto n = child(*spec, "nodeName")) {
      if (auto s = stringField(cx, *n, "spec.nodeName")) pod.nodeName = *s;
    }
    if (auto n = child(*spec, "hostNetwork")) {
      if (auto b = boolField(cx, *n, "spec.hostNetwork")) pod.hostNetwork = *b;
    }
    if (auto n = child(*spec, "containers")) loadContainerPorts(cx, *n, "spec.containers", pod);
  }
  if (auto status = child(object, "status"); status && expectMap(cx, *status, "status")) {
    if (auto n = child(*status, "phase")) {
      if (auto s = stringField(cx, *n, "status.phase")) {
        if (auto ph = parsePhase(*s)) {
          pod.phase = *ph;
        } else {
          cx.error(
              *n, "status.phase",
              "unsupported value \"" + *s + "\" (must be Pending, Running, Succeeded, Failed or Unknown)");
        }
      }
    }
    auto addIp = [&](const yaml::Node& n, const std::string& path) {
      auto s = stringField(cx, n, path);
      if (!s) return;
      auto ip = IpAddress::parse(*s);
      if (!ip) {
        cx.error(n, path, ip.error().message);
      } else if (std::find(pod.ips.begin(), pod.ips.end(), *ip) == pod.ips.end()) {
        pod.ips.push_back(*ip);
      }
    };
    if (auto n = child(*status, "podIP")) addIp(*n, "status.podIP");
    if (auto n = child(*status, "podIPs"); n && expectSequence(cx, *n, "status.podIPs")) {
      for (size_t i = 0; i < n->size(); ++i) {
        yaml::Node entry = (*n)[i];
        std::string path = indexed("status.podIPs", i);
        if (!expectMap(cx, entry, path)) continue;
        if (auto ip = child(entry, "ip")) addIp(*ip, join(path, "ip"));
      }
    }
  }
  if (cx.errors()) return;
  state.upsert(std::move(pod));
}

std::optional<PortSpec> loadPortSpec(Context& cx, const yaml::Node& node, const std::string& path) {
  if (!expectMap(cx, node, path)) return std::nullopt;
  rejectUnknownFields(cx, node, path, {"protocol", "port", "endPort"});
  int before = cx.errors();
  PortSpec spec;
  if (auto p = child(node, "protocol")) {
    if (auto v = protocolField(cx, *p, join(path, "protocol"))) spec.protocol = *v;
  }
  auto port = child(node, "port");
  auto endPort = child(node, "endPort");
  std::optional<uint16_t> first;
  if (port) {
    // IntOrString: a plain YAML/JSON number is a port number; anything quoted is a name.
    if (isPlainInteger(*port)) {
      first = portNumber(cx, *port, join(path, "port"));
      if (first) spec.port = PortSpec::Range{*first, *first};
    } else if (auto s = stringField(cx, *port, join(path, "port"))) {
      if (isValidPortName(*s)) {
        spec.port = *s;
      } else {
        cx.error(*port, join(path, "port"), std::string("invalid port \"") + *s + "\": " + kPortNameRule);
      }
    }
  }
  if (endPort) {
    std::string ePath = join(path, "endPort");
    if (!port) {
      cx.error(*endPort, ePath, "may not be specified without a numeric port");
    } else if (std::holds_alternative<std::string>(spec.port)) {
      cx.error(*endPort, ePath, "may not be specified when port is a named port");
    } else if (auto last = portNumber(cx, *endPort, ePath); last && first) {
      if (*last < *first) {
        cx.error(*endPort, ePath, "must be greater than or equal to port (" + std::to_string(*first) + ")");
      } else {
        spec.port = PortSpec::Range{*first, *last};
      }
    }
  }
  if (cx.errors() != before) return std::nullopt;
  return spec;
}

std::optional<Peer> loadPeer(Context& cx, const yaml::Node& node, const std::string& path) {
  if (!expectMap(cx, node, path)) return std::nullopt;
  rejectUnknownFields(cx, node, path, {"podSelector", "namespaceSelector", "ipBlock"});
  int before = cx.errors();
  auto pod = child(node, "podSelector");
  auto ns = child(node, "namespaceSelector");
  auto block = child(node, "ipBlock");
  if (!pod && !ns && !block) {
    cx.error(node, path, "must specify a peer (podSelector, namespaceSelector or ipBlock)");
    return std::nullopt;
  }
  if (block && (pod || ns)) {
    cx.error(node, path, "may not specify both ipBlock and another peer");
    return std::nullopt;
  }
  if (block) {
    std::string bPath = join(path, "ipBlock");
    if (!expectMap(cx, *block, bPath)) return std::nullopt;
    rejectUnknownFields(cx, *block, bPath, {"cidr", "except"});
    auto cidrNode = child(*block, "cidr");
    if (!cidrNode) {
      cx.error(*block, join(bPath, "cidr"), "required");
      return std::nullopt;
    }
    auto text = stringField(cx, *cidrNode, join(bPath, "cidr"));
    if (!text) return std::nullopt;
    auto cidr = Cidr::parse(*text);
    if (!cidr) {
      cx.error(*cidrNode, join(bPath, "cidr"), cidr.error().message);
      return std::nullopt;
    }
    IpBlock ipBlock{.cidr = *cidr, .except = {}};
    if (auto ex = child(*block, "except"); ex && expectSequence(cx, *ex, join(bPath, "except"))) {
      for (size_t i = 0; i < ex->size(); ++i) {
        yaml::Node e = (*ex)[i];
        std::string ePath = indexed(join(bPath, "except"), i);
        auto s = stringField(cx, e, ePath);
        if (!s) continue;
        auto c = Cidr::parse(*s);
        if (!c) {
          cx.error(e, ePath, c.error().message);
        } else if (!cidr->covers(*c)) {
          cx.error(e, ePath, "not within cidr " + cidr->toString());
        } else if (c->prefixLength() == cidr->prefixLength()) {
          cx.error(e, ePath, "must be strictly smaller than cidr " + cidr->toString());
        } else {
          ipBlock.except.push_back(*c);
        }
      }
    }
    if (cx.errors() != before) return std::nullopt;
    return Peer{std::move(ipBlock)};
  }
  SelectorPeer peer;
  if (pod) peer.podSelector = selectorField(cx, *pod, join(path, "podSelector"));
  if (ns) peer.namespaceSelector = selectorField(cx, *ns, join(path, "namespaceSelector"));
  if (cx.errors() != before) return std::nullopt;
  return Peer{std::move(peer)};
}

std::vector<Rule> loadRules(Context& cx, const yaml::Node& node, const std::string& path,
                            const char* peersField) {
  std::vector<Rule> rules;
  if (!expectSequence(cx, node, path)) return rules;
  for (size_t i = 0; i < node.size(); ++i) {
    yaml::Node r = node[i];
    std::string rPath = indexed(path, i);
    if (r.isNull()) {  // `- {}` is the usual spelling, but a bare `-` means the same empty rule
      rules.push_back(Rule{.peers = {}, .ports = {}, .where = cx.at(r)});
      continue;
    }
    if (!expectMap(cx, r, rPath)) continue;
    rejectUnknownFields(cx, r, rPath, {peersField, "ports"});
    Rule rule{.peers = {}, .ports = {}, .where = cx.at(r)};
    if (auto peers = child(r, peersField)) {
      std::string pPath = join(rPath, peersField);
      if (expectSequence(cx, *peers, pPath)) {
        for (size_t j = 0; j < peers->size(); ++j) {
          if (auto peer = loadPeer(cx, (*peers)[j], indexed(pPath, j)))
            rule.peers.push_back(std::move(*peer));
        }
      }
    }
    if (auto ports = child(r, "ports")) {
      std::string pPath = join(rPath, "ports");
      if (expectSequence(cx, *ports, pPath)) {
        for (size_t j = 0; j < ports->size(); ++j) {
          if (auto spec = loadPortSpec(cx, (*ports)[j], indexed(pPath, j)))
            rule.ports.push_back(std::move(*spec));
        }
      }
    }
    rules.push_back(std::move(rule));
  }
  return rules;
}

void loadNetworkPolicy(Context& cx, const yaml::Node& object, ClusterState& state) {
  auto meta = metadataField(cx, object, "NetworkPolicy", true, "default");
  if (!meta) return;
  NetworkPolicy policy{.ns = meta->ns, .name = meta->name, .where = cx.start()};
  auto spec = child(object, "spec");
  if (!spec) {
    cx.error(object, "spec", "required");
    return;
  }
  if (!expectMap(cx, *spec, "spec")) return;
  rejectUnknownFields(cx, *spec, "spec", {"podSelector", "ingress", "egress", "policyTypes"});
  if (auto sel = child(*spec, "podSelector")) {
    if (auto s = selectorField(cx, *sel, "spec.podSelector")) policy.podSelector = *s;
  }
  if (auto ingress = child(*spec, "ingress"))
    policy.ingressRules = loadRules(cx, *ingress, "spec.ingress", "from");
  auto egress = child(*spec, "egress");
  if (egress) policy.egressRules = loadRules(cx, *egress, "spec.egress", "to");
  // The API server's defaulting: Ingress always, Egress when spec.egress has a rule (`egress: []` adds none).
  policy.ingress = true;
  policy.egress = egress && egress->isSequence() && egress->size() > 0;
  if (auto types = child(*spec, "policyTypes"); types && expectSequence(cx, *types, "spec.policyTypes")) {
    if (types->size() > 0) {
      policy.ingress = policy.egress = false;
      if (types->size() > 2) cx.error(*types, "spec.policyTypes", "may not have more than 2 entries");
      for (size_t i = 0; i < types->size(); ++i) {
        std::string tPath = indexed("spec.policyTypes", i);
        auto s = stringField(cx, (*types)[i], tPath);
        if (!s) continue;
        if (*s == "Ingress") {
          policy.ingress = true;
        } else if (*s == "Egress") {
          policy.egress = true;
        } else {
          cx.error((*types)[i], tPath, "unsupported value \"" + *s + "\" (must be Ingress or Egress)");
        }
      }
    }
  }
  if (auto md = child(object, "metadata")) {
    auto annotations = child(*md, "annotations");
    if (annotations && expectMap(cx, *annotations, "metadata.annotations"))
      if (auto mode = child(*annotations, std::string(kModeAnnotation))) {
        std::string path = "metadata.annotations[" + std::string(kModeAnnotation) + "]";
        if (auto s = stringField(cx, *mode, path)) {
          if (*s == "audit")
            policy.audit = true;
          else if (*s != "enforce")
            cx.error(*mode, path, "unsupported value \"" + *s + "\" (must be audit or enforce)");
        }
      }
  }
  if (cx.errors()) return;
  state.upsert(std::move(policy));
}

const std::vector<std::string_view> kKeptKinds = {"Endpoints"};

void loadObject(Context& cx, const yaml::Node& object, ClusterState& state, const std::string& inheritedKind,
                int depth) {
  cx.beginObject(object);
  if (!object.isDefined() || object.isNull()) return;  // an empty document or list item
  if (!object.isMap()) {
    cx.error(object, "", "expected a Kubernetes object (a map with apiVersion, kind and metadata)");
    return;
  }
  std::string kind = inheritedKind, apiVersion;
  if (auto k = child(object, "kind")) {
    if (auto s = stringField(cx, *k, "kind")) kind = *s;
  }
  if (auto v = child(object, "apiVersion")) {
    if (auto s = stringField(cx, *v, "apiVersion")) apiVersion = *s;
  }
  if (kind.empty()) {
    if (!cx.errors()) cx.error(object, "kind", "required");
    return;
  }
  auto checkVersion = [&](const char* want) {
    if (apiVersion.empty() || apiVersion == want) return true;
    cx.nameObject(kind);
    cx.error(*child(object, "apiVersion"), "apiVersion",
             "unsupported apiVersion \"" + apiVersion + "\" for " + kind + " (must be " + want + ")");
    return false;
  };
  if (kind.ends_with("List") && child(object, "items")) {
    if (depth > 4) {
      cx.error(object, "items", "lists nested too deeply");
      return;
    }
    auto items = *child(object, "items");
    if (!expectSequence(cx, items, "items")) return;
    std::string itemKind = kind == "List" ? "" : kind.substr(0, kind.size() - 4);
    for (size_t i = 0; i < items.size(); ++i)
      loadObject(cx, items[i], state, itemKind, depth + 1);
    return;
  }
  if (kind == "Namespace") {
    if (checkVersion("v1")) loadNamespace(cx, object, state);
  } else if (kind == "Pod") {
    if (checkVersion("v1")) loadPod(cx, object, state);
  } else if (kind == "NetworkPolicy") {
    if (checkVersion("networking.k8s.io/v1")) loadNetworkPolicy(cx, object, state);
  } else if (kind == "Service") {
    if (checkVersion("v1")) loadService(cx, object, state);
  } else if (kind == "EndpointSlice") {
    if (checkVersion("discovery.k8s.io/v1")) loadEndpointSlice(cx, object, state);
  } else if (kind == "Node") {
    if (checkVersion("v1")) loadNode(cx, object, state);
  } else if (kind == "ClusterNetworkPolicy") {
    if (checkVersion("policy.networking.k8s.io/v1alpha2"))
      loadClusterPolicy(cx, object, state, ClusterPolicyKind::kClusterNetworkPolicy);
  } else if (kind == "AdminNetworkPolicy") {
    if (checkVersion("policy.networking.k8s.io/v1alpha1"))
      loadClusterPolicy(cx, object, state, ClusterPolicyKind::kAdminNetworkPolicy);
  } else if (kind == "BaselineAdminNetworkPolicy") {
    if (checkVersion("policy.networking.k8s.io/v1alpha1"))
      loadClusterPolicy(cx, object, state, ClusterPolicyKind::kBaselineAdminNetworkPolicy);
  } else if (std::find(kKeptKinds.begin(), kKeptKinds.end(), kind) != kKeptKinds.end()) {
    OtherObject other{.apiVersion = apiVersion, .kind = kind, .where = cx.start()};
    if (auto md = child(object, "metadata")) {
      if (auto n = child(*md, "name"); n && n->isScalar()) other.name = n->scalar();
      if (auto n = child(*md, "namespace"); n && n->isScalar()) other.ns = n->scalar();
    }
    state.upsert(std::move(other));
  } else {
    cx.nameObject(kind);
    cx.warn(object, "", "kind " + kind + " is not used by nftpol; skipped");
  }
}

// A YAML stream's documents, as cut at their markers. A stream is read in one pass; when it breaks, the
// document that broke it is read again on its own (with its marker blanked so that its columns stay), which
// names the error exactly as if every document were read alone, and the stream goes on after it. So one
// broken document never hides the others.
struct Document {
  std::string_view text;  // from its marker line, if it has one, to the next document
  int firstLine;          // 0-based line of its first line in the file
};

bool isMarker(std::string_view line, std::string_view marker) {
  return line.substr(0, 3) == marker &&
         (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r' || line[3] == '\n');
}

std::vector<Document> splitDocuments(std::string_view text) {
  std::vector<Document> docs;
  size_t from = 0, pos = 0;
  int line = 0, firstLine = 0;
  while (pos < text.size()) {
    std::string_view l = text.substr(pos);
    if (pos > from && (isMarker(l, "---") || isMarker(l, "..."))) {
      docs.push_back({text.substr(from, pos - from), firstLine});
      from = pos;
      firstLine = line;
    }
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) break;
    pos = end + 1;
    ++line;
  }
  if (from < text.size()) docs.push_back({text.substr(from), firstLine});
  return docs;
}

void reportYamlError(const yaml::ParseError& error, int firstLine,
                     const std::shared_ptr<const std::string>& file, std::vector<Diagnostic>& diagnostics) {
  SourceLocation where{file, firstLine + 1, 1};
  if (error.mark.line >= 0)
    where = SourceLocation{file, error.mark.line + 1 + firstLine, error.mark.column + 1};
  diagnostics.push_back({Severity::kError, where, "", "", "invalid YAML: " + error.message});
}

void loadAlone(yaml::Parser& parser, const Document& doc, const std::shared_ptr<const std::string>& file,
               ClusterState& state, std::vector<Diagnostic>& diagnostics) {
  std::string text(doc.text);
  if (isMarker(text, "---") || isMarker(text, "...")) text.replace(0, 3, "   ");
  parser.start(text);
  auto parsed = parser.next();
  if (!parsed) return;
  if (parsed->error) {
    reportYamlError(*parsed->error, doc.firstLine, file, diagnostics);
    return;
  }
  Context cx(file, doc.firstLine, diagnostics);
  loadObject(cx, parsed->root, state, "", 0);
  while (parser.next()) {  // the rest of a stream that ends here
  }
}

void loadDocuments(std::span<const Document> docs, const std::shared_ptr<const std::string>& file,
                   ClusterState& state, std::vector<Diagnostic>& diagnostics) {
  yaml::Parser parser;
  auto documentAt = [&](int line) {
    auto it = std::upper_bound(docs.begin(), docs.end(), line,
                               [](int l, const Document& d) { return l < d.firstLine; });
    return static_cast<size_t>(std::max<std::ptrdiff_t>(0, it - docs.begin() - 1));
  };
  // A document that is not UTF-8 is read alone, which reports it; a stream stops before it.
  std::vector<size_t> notUtf8;
  for (size_t i = 0; i < docs.size(); ++i)
    if (!yaml::isUtf8(docs[i].text)) notUtf8.push_back(i);
  notUtf8.push_back(docs.size());
  for (size_t i = 0; i < docs.size();) {
    size_t end = *std::lower_bound(notUtf8.begin(), notUtf8.end(), i);
    if (end == i) {
      loadAlone(parser, docs[i], file, state, diagnostics);
      ++i;
      continue;
    }
    const Document& first = docs[i];
    const Document& last = docs[end - 1];
    parser.start(
        std::string_view(first.text.data(), last.text.data() + last.text.size() - first.text.data()));
    std::optional<size_t> broken;
    std::optional<int> lastLine;  // where the last document read whole starts
    while (auto parsed = parser.next()) {
      if (parsed->error) {
        broken = lastLine ? std::max(i, documentAt(first.firstLine + *lastLine) + 1) : i;
        break;
      }
      Context cx(file, first.firstLine, diagnostics);
      loadObject(cx, parsed->root, state, "", 0);
      lastLine = parsed->start.line;
    }
    if (!broken || *broken >= end) {
      i = end;
      continue;
    }
    loadAlone(parser, docs[*broken], file, state, diagnostics);
    i = *broken + 1;
  }
}

}  // namespace

void loadText(std::string_view text, const std::string& fileName, ClusterState& state,
              std::vector<Diagnostic>& diagnostics) {
  auto file = std::make_shared<const std::string>(fileName);
  const std::vector<Document> docs = splitDocuments(text);
  // A large stream (a cluster dump) is parsed on every core: each worker takes a contiguous run of documents
  // into a state of its own, and the runs are merged in order, so a later document still replaces an earlier
  // one exactly as in a sequential load.
  constexpr size_t kParallelBytes = 256 * 1024;
  size_t workers = std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), 8);
  if (text.size() < kParallelBytes || docs.size() < 2 * workers || workers == 1) {
    loadDocuments(docs, file, state, diagnostics);
    return;
  }
  std::vector<std::span<const Document>> runs;
  size_t perWorker = text.size() / workers + 1, from = 0, bytes = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    bytes += docs[i].text.size();
    if (bytes >= perWorker || i + 1 == docs.size()) {
      runs.emplace_back(docs.data() + from, i + 1 - from);
      from = i + 1;
      bytes = 0;
    }
  }
  std::vector<ClusterState> states(runs.size());
  std::vector<std::vector<Diagnostic>> found(runs.size());
  std::vector<std::thread> threads;
  for (size_t w = 1; w < runs.size(); ++w)
    threads.emplace_back([&, w] { loadDocuments(runs[w], file, states[w], found[w]); });
  loadDocuments(runs[0], file, states[0], found[0]);
  for (auto& t : threads)
    t.join();
  for (size_t w = 0; w < runs.size(); ++w) {
    state.absorb(std::move(states[w]));
    diagnostics.insert(diagnostics.end(), std::make_move_iterator(found[w].begin()),
                       std::make_move_iterator(found[w].end()));
  }
}

void loadPaths(const std::vector<std::string>& paths, ClusterState& state,
               std::vector<Diagnostic>& diagnostics) {
  for (const auto& path : paths) {
    std::vector<std::string> files;
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      auto listing = listManifests(path);
      diagnostics.insert(diagnostics.end(), listing.errors.begin(), listing.errors.end());
      files = std::move(listing.files);
    } else {
      files.push_back(path);
    }
    for (const auto& f : files) {
      auto text = readManifest(f);
      if (!text) {
        diagnostics.push_back(fileError(f, text.error().message));
        continue;
      }
      loadText(*text, f, state, diagnostics);
    }
  }
}

}  // namespace nftpol::policy
