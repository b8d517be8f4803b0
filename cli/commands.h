#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace nftpol::cli {

// Each returns the process exit status; `args` excludes the program and subcommand names.
int canReachCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int matrixCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int explainCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int renderCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int controllerCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int cleanupCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int installCniCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int traceCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int observeCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int lintCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace nftpol::cli
