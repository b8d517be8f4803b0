#include "yaml_tree.h"

#include <libfyaml.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <unordered_map>

namespace nftpol::policy::yaml {

namespace {

const std::string kEmpty;

std::string_view text(fy_token* token) {
  size_t length = 0;
  const char* s = token ? fy_token_get_text(token, &length) : nullptr;
  return s ? std::string_view(s, length) : std::string_view();
}

// A plain scalar on one line is its source text verbatim, so it is taken from the input by its marks: asking
// libfyaml for the text formats a copy of every token, a tenth of the whole load.
std::string_view plainText(fy_token* token, std::string_view input) {
  const fy_mark* from = fy_token_start_mark(token);
  const fy_mark* to = fy_token_end_mark(token);
  if (from && to && from->line == to->line && from->input_pos <= to->input_pos &&
      to->input_pos <= input.size())
    return input.substr(from->input_pos, to->input_pos - from->input_pos);
  return text(token);
}

Mark markOf(fy_token* token, Mark fallback) {
  const fy_mark* m = token ? fy_token_start_mark(token) : nullptr;
  return m ? Mark{m->line, m->column} : fallback;
}

// An alias token starts after its '*'.
Mark aliasMark(fy_token* token, Mark fallback) {
  Mark m = markOf(token, fallback);
  if (m.column > 0) --m.column;
  return m;
}

// The YAML 1.1 core schema's null: what yaml-cpp and go-yaml read as no value.
bool isNullWord(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

// libfyaml 0.7.12 leaks the errors it collects (fy_diag_errors_iterate), so the first report is captured from
// its output instead: "<input>:LINE:COLUMN: error: MESSAGE\n", then the source line and a caret.
void capture(fy_diag*, void* user, const char* text, size_t length) {
  auto* first = static_cast<std::string*>(user);
  if (first->empty()) first->assign(text, length);
}

ParseError parseReport(const std::string& report, Mark fallback) {
  ParseError e{fallback, "syntax error"};
  std::string_view line(report);
  line = line.substr(0, line.find('\n'));
  size_t at = line.find(": error: ");
  if (at == std::string_view::npos) return e;
  e.message = std::string(line.substr(at + 9));
  std::string_view where = line.substr(0, at);  // "<input>:LINE:COLUMN", 1-based
  size_t c = where.rfind(':');
  size_t l = c == std::string_view::npos ? c : where.rfind(':', c - 1);
  if (l == std::string_view::npos) return e;
  int lineNo = std::atoi(std::string(where.substr(l + 1, c - l - 1)).c_str());
  int column = std::atoi(std::string(where.substr(c + 1)).c_str());
  if (lineNo > 0) e.mark = Mark{lineNo - 1, std::max(0, column - 1)};
  return e;
}

// Where `text` stops being UTF-8, if it does. Manifests must be UTF-8 (as the API server requires), and
// libfyaml 0.7.12 loops forever on some invalid bytes in a directive line, so nothing else reaches it.
std::optional<ParseError> invalidUtf8(std::string_view text) {
  size_t i = 0;
  // Manifests are nearly all ASCII: skip it eight bytes at a time.
  while (i + 8 <= text.size()) {
    uint64_t word;
    std::memcpy(&word, text.data() + i, 8);
    if (word & 0x8080808080808080ull) break;
    i += 8;
  }
  while (i < text.size() && static_cast<unsigned char>(text[i]) < 0x80)
    ++i;
  if (i == text.size()) return std::nullopt;
  i = 0;  // the slow walk, which keeps the position for the report
  Mark at{0, 0};
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = length > 0 && i + length <= text.size();
    for (size_t k = 1; ok && k < length; ++k)
      ok = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
    if (ok && length > 1) {  // no overlong forms, surrogates or code points past U+10FFFF
      uint32_t cp = c & (0x7f >> length);
      for (size_t k = 1; k < length; ++k)
        cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3f);
      static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[length] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
    }
    if (!ok) {
      char byte[8];
      std::snprintf(byte, sizeof byte, "0x%02x", c);
      return ParseError{at, std::string("invalid UTF-8 (byte ") + byte + ")"};
    }
    if (c == '\n') {
      ++at.line;
      at.column = 0;
    } else {
      ++at.column;
    }
    i += length;
  }
  return std::nullopt;
}

}  // namespace

bool isUtf8(std::string_view text) {
  return !invalidUtf8(text);
}

bool Node::isNull() const {
  return data_ && data_->kind == NodeData::Kind::kNull;
}
bool Node::isScalar() const {
  return data_ && data_->kind == NodeData::Kind::kScalar;
}
bool Node::isMap() const {
  return data_ && data_->kind == NodeData::Kind::kMap;
}
bool Node::isSequence() const {
  return data_ && data_->kind == NodeData::Kind::kSequence;
}
bool Node::isPlain() const {
  return data_ && data_->plain;
}
const std::string& Node::scalar() const {
  return data_ ? data_->scalar : kEmpty;
}
Mark Node::mark() const {
  return data_ ? data_->mark : Mark{};
}
size_t Node::size() const {
  if (isSequence()) return data_->children.size();
  if (isMap()) return data_->children.size() / 2;
  return 0;
}
Node Node::operator[](size_t i) const {
  return isSequence() && i < data_->children.size() ? Node(data_->children[i]) : Node();
}
Node Node::key(size_t i) const {
  return isMap() && 2 * i < data_->children.size() ? Node(data_->children[2 * i]) : Node();
}
Node Node::value(size_t i) const {
  return isMap() && 2 * i + 1 < data_->children.size() ? Node(data_->children[2 * i + 1]) : Node();
}

Parser::Parser() {
  open();
}

Parser::~Parser() {
  close();
}

void Parser::open() {
  fy_diag_cfg diagCfg;
  fy_diag_cfg_default(&diagCfg);
  diagCfg.fp = nullptr;
  diagCfg.output_fn = capture;  // the loader reports errors itself, with the file's name
  diagCfg.user = &report_;
  diagCfg.colorize = false;
  diagCfg.show_source = false;
  diagCfg.show_position = true;
  diagCfg.show_type = true;
  diagCfg.show_module = false;
  diagCfg.source_width = diagCfg.position_width = diagCfg.type_width = diagCfg.module_width = 0;
  diag_ = fy_diag_create(&diagCfg);
  fy_parse_cfg cfg{};
  cfg.flags = FYPCF_QUIET;
  cfg.diag = diag_;
  parser_ = fy_parser_create(&cfg);
}

void Parser::close() {
  if (parser_) fy_parser_destroy(parser_);
  if (diag_) fy_diag_unref(diag_);
  parser_ = nullptr;
  diag_ = nullptr;
}

void Parser::start(std::string_view text) {
  if (!done_) {  // abandoned mid-stream: libfyaml 0.7.12 cannot be reset then
    close();
    open();
  }
  input_ = text;
  done_ = false;
  last_ = Mark{0, 0};
  report_.clear();
  invalid_.reset();
  if (auto bad = invalidUtf8(text)) {
    invalid_ = std::make_unique<ParseError>(std::move(*bad));
    return;  // libfyaml never sees it
  }
  if (parser_) {
    fy_parser_reset(parser_);
    fy_parser_set_string(parser_, text.data(), text.size());
  }
}

std::optional<Parser::Document> Parser::next() {
  if (done_) return std::nullopt;
  Document doc;
  if (!parser_ || !diag_) {
    doc.error = std::make_unique<ParseError>(ParseError{{0, 0}, "cannot create a YAML parser"});
    done_ = true;
    return doc;
  }
  if (invalid_) {
    doc.error = std::move(invalid_);
    done_ = true;
    return doc;
  }

  std::vector<NodeData*> filling;  // the mappings and sequences being filled
  std::unordered_map<std::string, const NodeData*> anchors;
  bool started = false, complete = false;
  auto add = [&](const NodeData* node) {
    if (!filling.empty()) {
      filling.back()->children.push_back(node);
    } else if (!doc.root.isDefined()) {
      doc.root = Node(node);
    }
  };
  auto anchor = [&](fy_token* token, const NodeData* node) {
    if (token) anchors[std::string(text(token))] = node;
  };
  while (!complete && !doc.error) {
    fy_event* event = fy_parser_parse(parser_);
    if (!event) break;
    switch (event->type) {
      case FYET_DOCUMENT_START:
        started = true;
        doc.start = last_ = markOf(event->document_start.document_start, last_);
        break;
      case FYET_DOCUMENT_END:
        complete = true;
        break;
      case FYET_MAPPING_START:
      case FYET_SEQUENCE_START: {
        bool map = event->type == FYET_MAPPING_START;
        NodeData& node = doc.nodes.emplace_back();
        node.kind = map ? NodeData::Kind::kMap : NodeData::Kind::kSequence;
        node.mark = last_ =
            markOf(map ? event->mapping_start.mapping_start : event->sequence_start.sequence_start, last_);
        anchor(map ? event->mapping_start.anchor : event->sequence_start.anchor, &node);
        add(&node);
        filling.push_back(&node);
        break;
      }
      case FYET_MAPPING_END:
      case FYET_SEQUENCE_END:
        if (!filling.empty()) filling.pop_back();
        break;
      case FYET_SCALAR: {
        NodeData& node = doc.nodes.emplace_back();
        fy_token* value = event->scalar.value;
        auto style = fy_token_scalar_style(value);
        node.scalar = std::string(style == FYSS_PLAIN ? plainText(value, input_) : text(value));
        node.plain = !event->scalar.tag && style == FYSS_PLAIN;
        node.kind = node.plain && isNullWord(node.scalar) ? NodeData::Kind::kNull : NodeData::Kind::kScalar;
        node.mark = last_ = markOf(value, last_);
        // A quoted scalar's token starts inside the quotes; point at the quote, where the value starts.
        if ((style == FYSS_SINGLE_QUOTED || style == FYSS_DOUBLE_QUOTED) && node.mark.column > 0)
          --node.mark.column;
        anchor(event->scalar.anchor, &node);
        add(&node);
        break;
      }
      case FYET_ALIAS: {
        auto it = anchors.find(std::string(text(event->alias.anchor)));
        if (it == anchors.end()) {
          doc.error = std::make_unique<ParseError>(
              ParseError{aliasMark(event->alias.anchor, last_),
                         "unknown anchor \"" + std::string(text(event->alias.anchor)) + "\""});
        } else {
          add(it->second);
        }
        break;
      }
      default:
        break;
    }
    fy_parser_event_free(parser_, event);
  }
  if (!doc.error && !complete && fy_parser_get_stream_error(parser_))
    doc.error = std::make_unique<ParseError>(parseReport(report_, last_));
  if (doc.root.isDefined()) doc.start = doc.root.mark();
  if (doc.error) {
    // Reusing a parser after a failed or abandoned parse double-frees its input (libfyaml 0.7.12): start
    // afresh.
    close();
    open();
    done_ = true;
    return doc;
  }
  if (!started) {  // the stream's end
    done_ = true;
    return std::nullopt;
  }
  return doc;
}

}  // namespace nftpol::policy::yaml
