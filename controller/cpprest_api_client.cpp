#include "nftpol/controller/cpprest_api_client.h"

#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>

#include <mutex>
#include <optional>

namespace nftpol::controller {
namespace {

using web::http::client::http_client;

// boost's add_certificate_authority takes one certificate; a bundle is several.
std::vector<std::string> certificates(const std::string& pem) {
  static const std::string kEnd = "-----END CERTIFICATE-----";
  std::vector<std::string> out;
  size_t from = 0;
  for (size_t at; (at = pem.find(kEnd, from)) != std::string::npos; from = at + kEnd.size())
    out.push_back(pem.substr(from, at + kEnd.size() - from) + "\n");
  return out;
}

class CpprestApiClient final : public ApiClient {
 public:
  CpprestApiClient(const KubeConfig& config, std::chrono::seconds stall)
      : token_(config.token),
        tokenFile_(config.tokenFile),
        where_(config.where),
        serverName_(config.tlsServerName) {
    web::http::client::http_client_config cfg;
    cfg.set_timeout(stall);
    cfg.set_validate_certificates(!config.insecureSkipTlsVerify);
    auto cas = certificates(config.caPem);
    std::string cert = config.clientCertPem, key = config.clientKeyPem;
    cfg.set_ssl_context_callback([cas, cert, key](boost::asio::ssl::context& ctx) {
      for (const auto& ca : cas)
        ctx.add_certificate_authority(boost::asio::buffer(ca));
      if (!cert.empty()) {
        ctx.use_certificate_chain(boost::asio::buffer(cert));
        ctx.use_private_key(boost::asio::buffer(key), boost::asio::ssl::context::pem);
      }
    });
    client_ = std::make_unique<http_client>(web::uri(config.server), cfg);
  }

  Result<Response> get(const std::string& target) override {
    auto cancel = begin();
    if (!cancel) return Error{"cancelled"};
    try {
      auto response = client_->request(request(target), cancel->get_token()).get();
      return Response{response.status_code(), response.extract_utf8string(true).get()};
    } catch (const std::exception& e) {
      return Error{where_ + ": GET " + target + ": " + e.what()};
    }
  }

  Result<Response> stream(const std::string& target,
                          const std::function<bool(std::string_view)>& onLine) override {
    auto cancel = begin();
    if (!cancel) return Error{"cancelled"};
    try {
      auto response = client_->request(request(target), cancel->get_token()).get();
      if (response.status_code() != 200)
        return Response{response.status_code(), response.extract_utf8string(true).get()};
      auto body = response.body();
      for (;;) {
        concurrency::streams::container_buffer<std::string> line;
        body.read_line(line).get();
        if (line.collection().empty() && body.is_eof()) break;
        if (!onLine(line.collection())) {
          cancel->cancel();  // the connection goes with the rest of the stream
          break;
        }
      }
      return Response{200, ""};
    } catch (const std::exception& e) {
      return Error{where_ + ": watch " + target + ": " + e.what()};
    }
  }

  void cancel() override {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    if (current_) current_->cancel();
  }

 private:
  // A fresh cancellation for the next request; none once cancel() was called.
  std::optional<pplx::cancellation_token_source> begin() {
    std::lock_guard lock(mu_);
    if (cancelled_) return std::nullopt;
    current_ = pplx::cancellation_token_source();
    return current_;
  }

  web::http::http_request request(const std::string& target) {
    web::http::http_request req(web::http::methods::GET);
    req.set_request_uri(target);
    req.headers().add("Accept", "application/json");
    // cpprestsdk takes the name it sends as SNI and verifies the certificate against from the Host header
    // (calc_cn_host); the API server does not route by Host, so this is how tls-server-name is honoured.
    if (!serverName_.empty()) req.headers().add("Host", serverName_);
    std::string token = token_;
    if (!tokenFile_.empty()) {
      if (auto fresh = readToken(tokenFile_); fresh && !fresh->empty()) token = std::move(*fresh);
    }
    if (!token.empty()) req.headers().add("Authorization", "Bearer " + token);
    return req;
  }

  std::unique_ptr<http_client> client_;
  std::string token_, tokenFile_, where_, serverName_;
  std::mutex mu_;
  bool cancelled_ = false;
  std::optional<pplx::cancellation_token_source> current_;
};

}  // namespace

std::unique_ptr<ApiClient> connectApi(const KubeConfig& config, std::chrono::seconds stall) {
  return std::make_unique<CpprestApiClient>(config, stall);
}

}  // namespace nftpol::controller
