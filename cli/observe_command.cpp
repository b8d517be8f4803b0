// nftpol observe: a node's flow log, from its controller's /flows, as lines a person reads or as JSON.
#include <cpprest/http_client.h>

#include <ostream>

#include "args.h"
#include "cluster_input.h"
#include "commands.h"
#include "nftpol/controller/flow_log.h"
#include "nftpol/json_value.h"

namespace nftpol::cli {

namespace {
constexpr const char* kUsage =
    "usage: nftpol observe [--server 127.0.0.1:9402] [--verdict denied|allowed|would-deny] [--namespace NS]\n"
    "                      [--pod NS/POD] [--follow] [--output text|json]\n";
}

int observeCommand(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  auto args = Args::parse(argv, {"server", "verdict", "namespace", "pod", "output"}, {"follow"});
  std::string output = args ? args->last("output").value_or("text") : "";
  if (!args || !args->positionals().empty() || (output != "text" && output != "json")) {
    if (!args) err << "nftpol observe: " << args.error().message << "\n";
    if (args && output != "text" && output != "json")
      err << "nftpol observe: invalid --output \"" << output << "\" (must be text or json)\n";
    err << kUsage;
    return kExitBadInput;
  }
  // The server checks the filters as /flows does; here they only travel.
  std::map<std::string, std::string> query;
  for (const char* key : {"verdict", "namespace", "pod"})
    if (auto v = args->last(key)) query[key] = *v;
  if (args->flag("follow")) query["follow"] = "true";
  if (auto filter = controller::FlowFilter::parse(query); !filter) {
    err << "nftpol observe: " << filter.error().message << "\n" << kUsage;
    return kExitBadInput;
  }
  web::uri_builder path(U("/flows"));
  for (const auto& [k, v] : query)
    path.append_query(k, v);
  std::string server = args->last("server").value_or("127.0.0.1:9402");
  try {
    web::http::client::http_client_config config;
    config.set_timeout(std::chrono::seconds(args->flag("follow") ? 24 * 3600 : 10));
    web::http::client::http_client client("http://" + server, config);
    auto response = client.request(web::http::methods::GET, path.to_string()).get();
    if (response.status_code() != web::http::status_codes::OK) {
      err << "nftpol observe: " << server << " answered " << response.status_code() << ": "
          << response.extract_string().get();
      return response.status_code() == web::http::status_codes::BadRequest ? kExitBadInput : 1;
    }
    auto body = response.body();
    for (;;) {
      concurrency::streams::container_buffer<std::string> line;
      size_t n = body.read_line(line).get();
      const std::string& text = line.collection();
      if (n == 0 && text.empty() && body.is_eof()) break;
      if (text.empty()) continue;
      if (output == "json") {
        out << text << "\n";
      } else if (auto record = json::parse(text)) {
        out << controller::flowText(*record) << "\n";
      } else {
        err << "nftpol observe: an unreadable record: " << record.error().message << "\n";
      }
      out.flush();
    }
  } catch (const std::exception& e) {
    err << "nftpol observe: " << server << ": " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace nftpol::cli
