#pragma once

#include <functional>
#include <string>

#include "nftpol/result.h"

namespace nftpol::controller {

// How to reach and authenticate to the Kubernetes API server: from a kubeconfig file, or from inside a pod.
struct KubeConfig {
  std::string server;  // https://host:port
  std::string caPem;   // the CA bundle to verify the server with; empty: the system's
  bool insecureSkipTlsVerify = false;
  std::string tlsServerName;  // the name to verify instead of the server's host
  std::string token;          // a bearer token, as read at load
  std::string tokenFile;  // where the token comes from, reread as it rotates (bound service account tokens)
  std::string clientCertPem;  // a client certificate and its key, both or neither
  std::string clientKeyPem;
  std::string where;  // for messages: the kubeconfig and context, or "in-cluster"
};

// A token file's content without its trailing newline; an error when it cannot be read.
Result<std::string> readToken(const std::string& path);

// The context `context` (default: current-context) of a kubeconfig. Relative file names are taken from the
// kubeconfig's directory, *-data fields are base64. Credentials nftpol cannot use (exec plugins, auth
// providers, basic auth) are refused with the file:line:column of the field.
Result<KubeConfig> loadKubeconfig(const std::string& path, const std::string& context = "");

// Inside a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, and the service account's token and CA
// under `root` (/var/run/secrets/kubernetes.io/serviceaccount).
Result<KubeConfig> inClusterConfig(const std::function<const char*(const char*)>& environment,
                                   const std::string& root = "/var/run/secrets/kubernetes.io/serviceaccount");

}  // namespace nftpol::controller
