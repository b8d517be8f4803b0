#pragma once

// A YAML document as a tree that remembers where every node starts, built from libfyaml's event stream.
// libfyaml parses our manifests about 3.5x faster than yaml-cpp, but its document API (0.7.12) keeps no start
// mark for mappings and sequences; the event API does, and the loader's `file:line:column` errors need them.

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct fy_parser;
struct fy_diag;

namespace nftpol::policy::yaml {

struct Mark {
  int line = -1;  // 0-based; -1 when the node has no position of its own
  int column = -1;
};

struct NodeData;

// A view of one node; the default one is undefined (a missing child). Valid while its Document lives.
class Node {
 public:
  Node() = default;
  explicit Node(const NodeData* data) : data_(data) {}

  bool isDefined() const { return data_ != nullptr; }
  bool isNull() const;
  bool isScalar() const;
  bool isMap() const;
  bool isSequence() const;
  // An untagged plain scalar, whose type (string, number, bool) the YAML resolver decides; quoted, block and
  // tagged scalars are always strings.
  bool isPlain() const;
  const std::string& scalar() const;
  Mark mark() const;

  size_t size() const;            // items of a sequence, entries of a map
  Node operator[](size_t) const;  // an item of a sequence
  Node key(size_t) const;         // an entry of a map
  Node value(size_t) const;

 private:
  const NodeData* data_ = nullptr;
};

struct NodeData {
  enum class Kind : uint8_t { kNull, kScalar, kMap, kSequence };
  Kind kind = Kind::kNull;
  bool plain = false;
  Mark mark;
  std::string scalar;
  std::vector<const NodeData*> children;  // a sequence's items; a map's keys and values, alternating
};

struct ParseError {
  Mark mark;
  std::string message;
};

// Whether `text` is UTF-8 throughout, as manifests must be (the API server requires it).
bool isUtf8(std::string_view text);

// The documents of a YAML stream, one at a time. The parser is reused from stream to stream (creating one
// costs more than parsing a small manifest), and a stream is read in one pass: starting afresh for each
// document costs libfyaml a seventh of the whole load.
class Parser {
 public:
  Parser();
  ~Parser();
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  struct Document {
    std::deque<NodeData> nodes;  // stable addresses, so Nodes can point into it
    Node root;                   // undefined for an empty document
    Mark start;                  // where its content (or, when it has none, its start marker) is
    std::unique_ptr<ParseError> error;
  };
  // Starts on a stream. `text` must live until the stream is read; documents copy what they keep. Marks
  // count from the start of `text`.
  void start(std::string_view text);
  // The stream's next document, or nullopt after its last. A document with an error is the stream's last:
  // text that is not UTF-8 is refused before any document is read.
  std::optional<Document> next();

 private:
  void open();
  void close();
  fy_parser* parser_ = nullptr;
  fy_diag* diag_ = nullptr;
  std::string_view input_;
  bool done_ = true;
  Mark last_{0, 0};                      // the last position seen, for nodes and errors without one
  std::string report_;                   // libfyaml's first error report of the current stream
  std::unique_ptr<ParseError> invalid_;  // where the current stream stops being UTF-8
};

}  // namespace nftpol::policy::yaml
