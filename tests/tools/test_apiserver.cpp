// nftpol-test-apiserver: a Kubernetes API server for tests, speaking the real list/watch wire protocol over
// TLS.
//
//   nftpol-test-apiserver DIR
//
// makes a CA and a server certificate for 127.0.0.1 and the name nftpol-test-apiserver, listens on an
// ephemeral port of 127.0.0.1 and 127.0.0.2, and writes into DIR: ca.pem, kubeconfig (token "test-token"),
// kubeconfig-wrong-token, kubeconfig-unknown-ca (trusting another CA), kubeconfig-server-name (127.0.0.2,
// with tls-server-name: nftpol-test-apiserver), kubeconfig-wrong-name (127.0.0.2 without it),
// kubeconfig-client-cert (a client certificate the test CA signed, no token) and kubeconfig-stranger-cert
// (one another CA signed). Lists are JSON with metadata.resourceVersion and continue tokens (limit honoured);
// watches are newline-delimited events over a chunked response, with BOOKMARKs every second when idle and 410
// Gone for a resourceVersion older than the last compaction; a cluster-scoped object is read by name (GET
// /api/v1/nodes/NAME: the object or 404). It reads commands on stdin, one per line, and answers each with
// "ok" (or "error: ...") on stdout:
//   put RESOURCE JSON        add or replace an object (RESOURCE as in the URL: pods, networkpolicies, ...)
//   delete RESOURCE KEY      KEY is namespace/name, or the name of a cluster-scoped object
//   compact                  forget the event log: watches resumed from before now get 410 Gone, and
//                            open ones that had not sent what it forgot get an ERROR event with 410
//   fault RESOURCE WHAT      to the watches of RESOURCE open now: cut (the stream ends mid-event), gone (an
//                            ERROR event with 410), garbage (a line that is not JSON); stall (nothing more is
//                            sent, also on new watches, until `fault RESOURCE none`)
//   slow MS                  every response waits MS first
//   dump FILE                every object, as a List that `nftpol render --cluster` reads
//   requests                 prints "lists N watches M unauthorized K"
//   populate NAMESPACES PODS POLICIES NODES         a synthetic cluster, for load tests
//   churn RATE SECONDS NAMESPACES PODS NODES PORT   changes to its pods at RATE a second, and the lag until
//                            the controller whose /metrics is on 127.0.0.1:PORT committed each (see churn())
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nftpol/json_value.h"

namespace {

using namespace std::chrono_literals;
const std::string kToken = "test-token";

// ---- certificates ----

struct Identity {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
};

std::string pem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

std::string keyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

void extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A CA when `issuer` is null, else a certificate that `issuer` signs: a server's for 127.0.0.1 and
// nftpol-test-apiserver, or a client's.
Identity makeIdentity(const char* commonName, const Identity* issuer, bool client = false) {
  static long serial = 1;
  Identity id{EVP_EC_gen("P-256"), X509_new()};
  X509_set_version(id.cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(id.cert), serial++);
  X509_gmtime_adj(X509_getm_notBefore(id.cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(id.cert), 86400);
  X509_set_pubkey(id.cert, id.key);
  X509_NAME* name = X509_get_subject_name(id.cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(commonName), -1,
                             -1, 0);
  X509* signer = issuer ? issuer->cert : id.cert;
  X509_set_issuer_name(id.cert, X509_get_subject_name(signer));
  if (!issuer) {
    extension(id.cert, signer, NID_basic_constraints, "critical,CA:TRUE");
    extension(id.cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else if (client) {
    extension(id.cert, signer, NID_basic_constraints, "critical,CA:FALSE");
    extension(id.cert, signer, NID_ext_key_usage, "clientAuth");
  } else {
    extension(id.cert, signer, NID_basic_constraints, "critical,CA:FALSE");
    extension(id.cert, signer, NID_subject_alt_name, "IP:127.0.0.1,DNS:nftpol-test-apiserver");
    extension(id.cert, signer, NID_ext_key_usage, "serverAuth");
  }
  X509_sign(id.cert, issuer ? issuer->key : id.key, EVP_sha256());
  return id;
}

// ---- the objects and their events ----

// Counters, so that a fault reaches every watch open when it is asked for (each remembers what it has seen),
// including ones whose client has gone and that would otherwise swallow it; and, when none was open (the
// client is between two watches), the next one. A fault asked for between a list and the watch that follows
// it must not be lost: the test waits for what the fault causes.
struct Faults {
  int cut = 0, gone = 0, garbage = 0;
  bool stall = false;
};

class Store {
 public:
  std::mutex mu;
  std::condition_variable changed;
  long long version = 1000;
  long long compactedAt = 0;
  std::map<std::string, std::map<std::string, std::string>> objects;          // resource -> key -> JSON
  std::map<std::string, std::vector<std::pair<long long, std::string>>> log;  // sorted by version
  // Per resource, the version of the last event a compaction forgot: a watch that had not sent it yet has
  // missed it, and (as the API server tells a watcher that fell behind its cache) gets an ERROR 410.
  std::map<std::string, long long> forgotten;
  std::map<std::string, Faults> faults;
  std::map<std::string, Faults> delivered;  // the counts some watch has acted on
  std::map<std::string, int> openWatches;
  int slowMs = 0;
  int lists = 0, watches = 0, unauthorized = 0;

  std::string put(const std::string& resource, const std::string& text) {
    auto parsed = nftpol::json::parse(text);
    if (!parsed || !parsed->isObject()) return "error: not a JSON object";
    nftpol::json::Value object = *parsed;
    auto* md = object.find("metadata");
    auto* name = md ? md->find("name") : nullptr;
    if (!name || !name->isString()) return "error: no metadata.name";
    auto* ns = md->find("namespace");
    std::string key = ns && ns->isString() ? ns->asString() + "/" + name->asString() : name->asString();
    std::lock_guard lock(mu);
    object["metadata"]["resourceVersion"] = std::to_string(++version);
    bool existed = objects[resource].contains(key);
    objects[resource][key] = object.serialize();
    log[resource].push_back({version, std::string(R"({"type":")") + (existed ? "MODIFIED" : "ADDED") +
                                          R"(","object":)" + object.serialize() + "}"});
    changed.notify_all();
    return "ok";
  }
  std::string erase(const std::string& resource, const std::string& key) {
    std::lock_guard lock(mu);
    auto it = objects[resource].find(key);
    if (it == objects[resource].end()) return "error: no such object";
    auto object = *nftpol::json::parse(it->second);
    object["metadata"]["resourceVersion"] = std::to_string(++version);
    objects[resource].erase(it);
    log[resource].push_back({version, R"({"type":"DELETED","object":)" + object.serialize() + "}"});
    changed.notify_all();
    return "ok";
  }
};

Store store;

// ---- HTTP over TLS ----

bool sendAll(SSL* ssl, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    int n = SSL_write(ssl, data.data() + done, static_cast<int>(data.size() - done));
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool respond(SSL* ssl, int status, const std::string& body) {
  const char* reason = status == 200   ? "OK"
                       : status == 401 ? "Unauthorized"
                       : status == 410 ? "Gone"
                                       : "Not Found";
  return sendAll(ssl, "HTTP/1.1 " + std::to_string(status) + " " + reason +
                          "\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body);
}

std::string statusBody(int code, const std::string& message) {
  return R"({"kind":"Status","apiVersion":"v1","status":"Failure","code":)" + std::to_string(code) +
         R"(,"message":")" + message + R"("})";
}

std::string param(const std::string& query, const std::string& name) {
  size_t at = 0;
  while ((at = query.find(name + "=", at)) != std::string::npos) {
    if (at == 0 || query[at - 1] == '&' || query[at - 1] == '?') {
      auto end = query.find('&', at);
      return query.substr(at + name.size() + 1,
                          end == std::string::npos ? std::string::npos : end - at - name.size() - 1);
    }
    ++at;
  }
  return "";
}

// A list item without kind and apiVersion, as the API server sends them.
std::string item(const std::string& json) {
  auto object = *nftpol::json::parse(json);
  nftpol::json::Value::Object kept;
  for (const auto& [k, v] : object.asObject())
    if (k != "kind" && k != "apiVersion") kept.emplace_back(k, v);
  return nftpol::json::Value(std::move(kept)).serialize();
}

void list(SSL* ssl, const std::string& resource, const std::string& kind, const std::string& query) {
  std::string body;
  {
    std::lock_guard lock(store.mu);
    ++store.lists;
    size_t limit = param(query, "limit").empty() ? SIZE_MAX : std::stoul(param(query, "limit"));
    size_t offset = param(query, "continue").empty() ? 0 : std::stoul(param(query, "continue"));
    const auto& objects = store.objects[resource];
    std::string items;
    size_t i = 0;
    for (const auto& [key, json] : objects) {
      if (i >= offset && i - offset < limit) items += (items.empty() ? "" : ",") + item(json);
      ++i;
    }
    std::string next =
        limit != SIZE_MAX && offset + limit < objects.size() ? std::to_string(offset + limit) : "";
    body = R"({"kind":")" + kind + R"(List","apiVersion":"v1","metadata":{"resourceVersion":")" +
           std::to_string(store.version) + R"(")" + (next.empty() ? "" : R"(,"continue":")" + next + R"(")") +
           R"(},"items":[)" + items + "]}";
  }
  respond(ssl, 200, body);
}

// One cluster-scoped object (GET /api/v1/nodes/NAME).
bool getObject(SSL* ssl, const std::string& resource, const std::string& name) {
  std::string body;
  {
    std::lock_guard lock(store.mu);
    auto& objects = store.objects[resource];
    if (auto it = objects.find(name); it != objects.end()) body = it->second;
  }
  return body.empty() ? respond(ssl, 404, statusBody(404, resource + " \"" + name + "\" not found"))
                      : respond(ssl, 200, body);
}

bool chunk(SSL* ssl, const std::string& line) {
  std::ostringstream size;
  size << std::hex << line.size() + 1;
  return sendAll(ssl, size.str() + "\r\n" + line + "\n\r\n");
}

// Returns whether the connection may carry another request.
bool watch(SSL* ssl, const std::string& resource, const std::string& query) {
  long long from =
      std::stoll(param(query, "resourceVersion").empty() ? "0" : param(query, "resourceVersion"));
  int timeout = param(query, "timeoutSeconds").empty() ? 300 : std::stoi(param(query, "timeoutSeconds"));
  bool bookmarks = param(query, "allowWatchBookmarks") == "true";
  std::unique_lock lock(store.mu);
  ++store.watches;
  if (from < store.compactedAt) {
    lock.unlock();
    return respond(ssl, 410, statusBody(410, "too old resource version"));
  }
  lock.unlock();
  if (!sendAll(ssl,
               "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"))
    return false;
  lock.lock();
  ++store.openWatches[resource];
  Faults seen = store.delivered[resource];  // what no watch has acted on yet, this one does
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
  auto lastSent = std::chrono::steady_clock::now();
  bool keep = true;
  // One event, sent without the lock held (a slow client must not stall the others).
  auto send = [&](const std::string& line) {
    lock.unlock();
    bool sent = chunk(ssl, line);
    lock.lock();
    lastSent = std::chrono::steady_clock::now();
    return sent;
  };
  for (;;) {
    Faults& f = store.faults[resource];
    auto& log = store.log[resource];
    // Found again each turn, by version: a compaction may have emptied the log since the last one.
    auto next = std::upper_bound(log.begin(), log.end(), from,
                                 [](long long v, const auto& event) { return v < event.first; });
    bool missed = from < store.forgotten[resource];
    if (f.cut > seen.cut) {  // half an event, then the connection goes
      seen.cut = store.delivered[resource].cut = f.cut;
      lock.unlock();
      sendAll(ssl, "40\r\n{\"type\":\"ADDED\",\"obj");
      keep = false;
      lock.lock();
      break;
    }
    if (f.gone > seen.gone) {
      seen.gone = store.delivered[resource].gone = f.gone;
      lock.unlock();
      chunk(ssl, R"({"type":"ERROR","object":)" + statusBody(410, "too old resource version") + "}");
      lock.lock();
      break;
    }
    if (f.garbage > seen.garbage) {
      seen.garbage = store.delivered[resource].garbage = f.garbage;
      lock.unlock();
      chunk(ssl, "<html>this is not an event</html>");
      lock.lock();
      break;
    }
    if (f.stall) {
      store.changed.wait_for(lock, 100ms);
      continue;
    }
    if (missed) {
      lock.unlock();
      chunk(ssl, R"({"type":"ERROR","object":)" + statusBody(410, "too old resource version") + "}");
      lock.lock();
      break;
    }
    if (next != log.end()) {
      from = next->first;
      std::string line = next->second;  // the log may grow while the event is sent
      if (!(keep = send(line))) break;
      continue;
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= end) break;
    if (bookmarks && now - lastSent >= 1s) {
      std::string line =
          R"({"type":"BOOKMARK","object":{"kind":"Bookmark","apiVersion":"v1","metadata":{"resourceVersion":")" +
          std::to_string(store.version) + R"("}}})";
      from = store.version;
      if (!(keep = send(line))) break;
      continue;
    }
    store.changed.wait_for(lock, 100ms);
  }
  --store.openWatches[resource];
  lock.unlock();
  return keep && sendAll(ssl, "0\r\n\r\n");
}

const std::map<std::string, std::string> kKinds = {
    {"/api/v1/namespaces", "Namespace"},
    {"/api/v1/pods", "Pod"},
    {"/api/v1/services", "Service"},
    {"/api/v1/nodes", "Node"},
    {"/apis/networking.k8s.io/v1/networkpolicies", "NetworkPolicy"},
    {"/apis/discovery.k8s.io/v1/endpointslices", "EndpointSlice"},
    // Installed: ClusterNetworkPolicy's CRD; not installed (404): AdminNetworkPolicy's and
    // BaselineAdminNetworkPolicy's.
    {"/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies", "ClusterNetworkPolicy"},
};

void serve(SSL_CTX* ctx, int fd) {
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) == 1) {
    // A client certificate that the test CA signed authenticates, as the API server's x509 authenticator
    // does.
    X509* peer = SSL_get1_peer_certificate(ssl);
    bool certified = peer && SSL_get_verify_result(ssl) == X509_V_OK;
    X509_free(peer);
    std::string buffer;
    char data[4096];
    for (;;) {
      size_t headerEnd;
      while ((headerEnd = buffer.find("\r\n\r\n")) == std::string::npos) {
        int n = SSL_read(ssl, data, sizeof data);
        if (n <= 0) goto done;
        buffer.append(data, static_cast<size_t>(n));
      }
      std::string head = buffer.substr(0, headerEnd);
      buffer.erase(0, headerEnd + 4);
      std::istringstream lines(head);
      std::string method, target, version, line;
      lines >> method >> target >> version;
      bool authorized = certified;
      while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon);
        for (auto& c : name)
          c = static_cast<char>(std::tolower(c));
        if (name == "authorization" && line.substr(colon + 1).find("Bearer " + kToken) != std::string::npos)
          authorized = true;
      }
      int slow;
      {
        std::lock_guard lock(store.mu);
        slow = store.slowMs;
        if (!authorized) ++store.unauthorized;
      }
      if (slow) std::this_thread::sleep_for(std::chrono::milliseconds(slow));
      auto question = target.find('?');
      std::string path = target.substr(0, question);
      std::string query = question == std::string::npos ? "" : target.substr(question + 1);
      auto kind = kKinds.find(path);
      auto slash = path.rfind('/');
      auto collection = kKinds.find(path.substr(0, slash));
      bool keep;
      if (!authorized) {
        keep = respond(ssl, 401, statusBody(401, "Unauthorized"));
      } else if (method == "GET" && kind == kKinds.end() && collection != kKinds.end()) {
        keep = getObject(ssl, collection->first.substr(collection->first.rfind('/') + 1),
                         path.substr(slash + 1));
      } else if (method != "GET" || kind == kKinds.end()) {
        keep = respond(ssl, 404, statusBody(404, "not found"));
      } else if (param(query, "watch") == "1" || param(query, "watch") == "true") {
        keep = watch(ssl, path.substr(path.rfind('/') + 1), query);
      } else {
        list(ssl, path.substr(path.rfind('/') + 1), kind->second, query);
        keep = true;
      }
      if (!keep) break;
    }
  }
done:
  SSL_shutdown(ssl);
  SSL_free(ssl);
  ::close(fd);
}

// `user`: the user's fields, as YAML at the indentation of `token:`.
std::string kubeconfig(const std::string& host, int port, const std::string& caFile, const std::string& user,
                       const std::string& serverName = "") {
  return "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: test\n  cluster:\n    "
         "server: "
         "https://" +
         host + ":" + std::to_string(port) + "\n    certificate-authority: " + caFile +
         (serverName.empty() ? "" : "\n    tls-server-name: " + serverName) +
         "\ncontexts:\n- name: test\n  context: {cluster: test, user: test}\nusers:\n- name: test\n  user:\n "
         "   " +
         user + "\n";
}
std::string token(const std::string& value) {
  return "token: " + value;
}

// A listening socket on HOST:*port (0: any free port, which *port then holds); -1 on failure.
int listenOn(const char* host, int* port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(*port));
  inet_pton(AF_INET, host, &address.sin_addr);
  socklen_t length = sizeof address;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || listen(fd, 64) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(address.sin_port);
  return fd;
}

// ---- load ----

// A pod of the synthetic cluster: namespace ns-(i % namespaces), label app=app-((i + version) % 50), on
// node-(i % nodes), its address derived from i and the version (so a recreated pod has a new one).
std::string loadPod(int i, int version, int namespaces, int nodes) {
  int ip = i + version * 40000;
  return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"pod-)" + std::to_string(i) +
         R"(","namespace":"ns-)" + std::to_string(i % namespaces) + R"(","labels":{"app":"app-)" +
         std::to_string((i + version) % 50) + R"(","tier":"t)" + std::to_string(i % 3) +
         R"("}},"spec":{"nodeName":"node-)" + std::to_string(i % nodes) +
         R"(","containers":[{"name":"c","ports":[{"name":"http","containerPort":8080}]}]},)" +
         R"("status":{"phase":"Running","podIP":"10.)" + std::to_string(64 + ip / 65536) + "." +
         std::to_string(ip / 256 % 256) + "." + std::to_string(ip % 256) + R"("}})";
}

// populate NAMESPACES PODS POLICIES NODES: a synthetic cluster. Policy k selects app-(k % 50) in its
// namespace and admits pods of app-((k + 1) % 50) from namespaces labelled tier=t(k % 3) on port http; egress
// to 443.
std::string populate(std::istringstream& in) {
  int namespaces = 0, pods = 0, policies = 0, nodes = 0;
  in >> namespaces >> pods >> policies >> nodes;
  if (namespaces < 1 || nodes < 1 || pods < 0 || policies < 0)
    return "error: populate NAMESPACES PODS POLICIES NODES";
  for (int n = 0; n < nodes; ++n)
    store.put("nodes", R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"node-)" + std::to_string(n) +
                           R"("},"spec":{"podCIDR":"10.)" + std::to_string(200 + n / 256) + "." +
                           std::to_string(n % 256) + R"(.0/24"}})");
  for (int n = 0; n < namespaces; ++n)
    store.put("namespaces", R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ns-)" +
                                std::to_string(n) + R"(","labels":{"tier":"t)" + std::to_string(n % 3) +
                                R"("}}})");
  for (int i = 0; i < pods; ++i)
    store.put("pods", loadPod(i, 0, namespaces, nodes));
  for (int k = 0; k < policies; ++k)
    store.put("networkpolicies",
              R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"pol-)" +
                  std::to_string(k) + R"(","namespace":"ns-)" + std::to_string(k % namespaces) +
                  R"("},"spec":{"podSelector":{"matchLabels":{"app":"app-)" + std::to_string(k % 50) +
                  R"("}},"policyTypes":["Ingress","Egress"],"ingress":[{"from":[{"namespaceSelector":)" +
                  R"({"matchLabels":{"tier":"t)" + std::to_string(k % 3) +
                  R"("}},"podSelector":{"matchLabels":{"app":"app-)" + std::to_string((k + 1) % 50) +
                  R"("}}}],"ports":[{"port":"http"}]}],"egress":[{"ports":[{"port":443}]}]}})");
  return "ok";
}

// The controller's nftpol_event_to_commit_seconds_count (the changes its commits have enforced), read from
// its /metrics on 127.0.0.1:PORT; -1 when it cannot be read.
long long committedEvents(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    std::string request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
      char data[65536];
      ssize_t n;
      while ((n = recv(fd, data, sizeof data, 0)) > 0)
        response.append(data, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  const std::string name = "\nnftpol_event_to_commit_seconds_count ";
  auto at = response.find(name);
  return at == std::string::npos ? -1 : std::stoll(response.substr(at + name.size()));
}

// churn RATE SECONDS NAMESPACES PODS NODES PORT: RATE changes a second to the populated pods for SECONDS (of
// every four: a pod deleted, the same pod created again with a new address, two pods relabelled), while the
// controller's committed count is polled every 10 ms. Answers, once every change is committed (or 60 s after
// the last), "changes N committed M lag_ms median A p99 B max C slowest_poll_ms D": the time from each
// change's write here to the first poll that saw it committed, and the longest one poll took (a lag the
// measurement made, not the controller).
std::string churn(std::istringstream& in) {
  int rate = 0, seconds = 0, namespaces = 0, pods = 0, nodes = 0, port = 0;
  in >> rate >> seconds >> namespaces >> pods >> nodes >> port;
  if (rate < 1 || seconds < 1 || pods < 4 || namespaces < 1 || nodes < 1 || port < 1)
    return "error: churn RATE SECONDS NAMESPACES PODS NODES PORT";
  using Clock = std::chrono::steady_clock;
  long long base = committedEvents(port);
  if (base < 0) return "error: cannot read the controller's metrics";
  size_t total = static_cast<size_t>(rate) * static_cast<size_t>(seconds);
  std::vector<Clock::time_point> written(total), seen(total);
  std::atomic<size_t> done{0};
  std::atomic<bool> writing{true};
  double slowestPoll = 0;  // ms: a lag that the poll itself made (a connection that waited) shows here
  std::thread poller([&] {
    size_t next = 0;  // the first change not yet seen committed
    auto deadline = Clock::time_point::max();
    while (next < total) {
      auto now = Clock::now();
      if (!writing && deadline == Clock::time_point::max()) deadline = now + 60s;
      if (now > deadline) break;
      long long committed = committedEvents(port) - base;
      slowestPoll =
          std::max(slowestPoll, std::chrono::duration<double, std::milli>(Clock::now() - now).count());
      size_t available = done.load();
      while (next < available && static_cast<long long>(next) < committed)
        seen[next++] = now;
      std::this_thread::sleep_for(10ms);
    }
  });
  std::map<int, int> version;  // pod -> how often it was relabelled or recreated
  auto start = Clock::now();
  for (size_t i = 0; i < total; ++i) {
    std::this_thread::sleep_until(start + std::chrono::microseconds(1000000 * i / static_cast<size_t>(rate)));
    int pod = static_cast<int>((i / 4 * 7919) % static_cast<size_t>(pods));  // spread over the pods
    std::string reply;
    written[i] = Clock::now();
    if (i % 4 == 0) {
      reply = store.erase("pods", "ns-" + std::to_string(pod % namespaces) + "/pod-" + std::to_string(pod));
    } else {
      if (i % 4 == 2) pod = (pod + 1) % pods;  // relabel another pod
      reply = store.put("pods", loadPod(pod, ++version[pod], namespaces, nodes));
    }
    if (reply != "ok") {
      writing = false;
      poller.join();
      return "error: change " + std::to_string(i) + ": " + reply;
    }
    done = i + 1;
  }
  writing = false;
  poller.join();
  std::vector<double> lags;
  for (size_t i = 0; i < total; ++i)
    if (seen[i] != Clock::time_point{})
      lags.push_back(std::chrono::duration<double, std::milli>(seen[i] - written[i]).count());
  std::sort(lags.begin(), lags.end());
  auto quantile = [&](double q) {
    return lags.empty() ? -1.0 : lags[std::min(lags.size() - 1, static_cast<size_t>(q * lags.size()))];
  };
  char line[200];
  std::snprintf(line, sizeof line,
                "changes %zu committed %zu lag_ms median %.0f p99 %.0f max %.0f slowest_poll_ms %.0f", total,
                lags.size(), quantile(0.5), quantile(0.99), lags.empty() ? -1.0 : lags.back(), slowestPoll);
  return line;
}

std::string command(const std::string& line) {
  std::istringstream in(line);
  std::string verb, resource;
  in >> verb;
  if (verb == "put") {
    in >> resource;
    std::string rest;
    std::getline(in, rest);
    return store.put(resource, rest);
  }
  if (verb == "delete") {
    std::string key;
    in >> resource >> key;
    return store.erase(resource, key);
  }
  if (verb == "populate") return populate(in);
  if (verb == "churn") return churn(in);
  std::lock_guard lock(store.mu);
  store.changed.notify_all();
  if (verb == "compact") {
    for (auto& [r, log] : store.log) {
      if (!log.empty()) store.forgotten[r] = log.back().first;
      log.clear();
    }
    store.compactedAt = store.version;
    return "ok";
  }
  if (verb == "fault") {
    std::string what;
    in >> resource >> what;
    Faults& f = store.faults[resource];
    if (what == "cut") {
      ++f.cut;
    } else if (what == "gone") {
      ++f.gone;
    } else if (what == "garbage") {
      ++f.garbage;
    } else if (what == "stall" || what == "none") {
      f.stall = what == "stall";
    } else {
      return "error: unknown fault " + what;
    }
    return "ok";
  }
  if (verb == "slow") {
    in >> store.slowMs;
    return "ok";
  }
  if (verb == "requests")
    return "lists " + std::to_string(store.lists) + " watches " + std::to_string(store.watches) +
           " unauthorized " + std::to_string(store.unauthorized);
  if (verb == "dump") {
    std::string file;
    in >> file;
    std::string items;
    for (const auto& [r, objects] : store.objects)
      for (const auto& [key, json] : objects)
        items += (items.empty() ? "" : ",") + json;
    std::ofstream(file) << R"({"apiVersion":"v1","kind":"List","items":[)" << items << "]}\n";
    return "ok";
  }
  return "error: unknown command " + verb;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: nftpol-test-apiserver DIR\n");
    return 2;
  }
  std::string dir = argv[1];
  signal(SIGPIPE,
         SIG_IGN);  // a client that goes away mid-response is an error to handle, not a reason to die
  Identity ca = makeIdentity("nftpol test CA", nullptr), server = makeIdentity("127.0.0.1", &ca);
  Identity otherCa = makeIdentity("another CA", nullptr);
  std::ofstream(dir + "/ca.pem") << pem(ca.cert);
  std::ofstream(dir + "/other-ca.pem") << pem(otherCa.cert);
  Identity client = makeIdentity("nftpol", &ca, true), stranger = makeIdentity("nftpol", &otherCa, true);
  for (auto [name, id] : {std::pair{"client", &client}, std::pair{"stranger", &stranger}}) {
    std::ofstream(dir + "/" + name + ".pem") << pem(id->cert);
    std::ofstream(dir + "/" + name + "-key.pem") << keyPem(id->key);
  }

  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_use_certificate(ctx, server.cert);
  SSL_CTX_use_PrivateKey(ctx, server.key);
  // Asked for, not required (a bearer token does as well); verified against the test CA in serve().
  X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca.cert);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
  // 127.0.0.2 is not in the certificate: a client reaches it only by verifying another name
  // (tls-server-name).
  int port = 0;
  int listener = listenOn("127.0.0.1", &port), other = listener < 0 ? -1 : listenOn("127.0.0.2", &port);
  if (listener < 0 || other < 0) {
    std::perror("nftpol-test-apiserver");
    return 1;
  }
  std::ofstream(dir + "/kubeconfig") << kubeconfig("127.0.0.1", port, "ca.pem", token(kToken));
  std::ofstream(dir + "/kubeconfig-wrong-token")
      << kubeconfig("127.0.0.1", port, "ca.pem", token("not-the-token"));
  std::ofstream(dir + "/kubeconfig-unknown-ca")
      << kubeconfig("127.0.0.1", port, "other-ca.pem", token(kToken));
  std::ofstream(dir + "/kubeconfig-server-name")
      << kubeconfig("127.0.0.2", port, "ca.pem", token(kToken), "nftpol-test-apiserver");
  std::ofstream(dir + "/kubeconfig-wrong-name") << kubeconfig("127.0.0.2", port, "ca.pem", token(kToken));
  for (const char* name : {"client", "stranger"})
    std::ofstream(dir + "/kubeconfig-" + name + "-cert") << kubeconfig(
        "127.0.0.1", port, "ca.pem",
        std::string("client-certificate: ") + name + ".pem\n    client-key: " + name + "-key.pem");
  for (int fd : {listener, other})
    std::thread([ctx, fd] {
      for (;;) {
        int client = accept(fd, nullptr, nullptr);
        if (client >= 0) std::thread(serve, ctx, client).detach();
      }
    }).detach();

  std::cout << "ok " << port << std::endl;
  for (std::string line; std::getline(std::cin, line);)
    std::cout << command(line) << std::endl;
  return 0;  // stdin closed: the test is over
}
