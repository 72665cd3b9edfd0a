#include "data/jsonl.h"

#include <cerrno>
#include <cstring>

namespace mg {

JsonlReader::JsonlReader(std::string path) : path_(std::move(path)), in_(path_, std::ios::binary) {
  if (!in_) throw JsonError(detail::concat(path_, ": cannot open: ", std::strerror(errno)));
}

bool JsonlReader::next(JsonValue& obj) {
  if (!std::getline(in_, buf_)) {
    if (in_.bad()) throw JsonError(detail::concat(path_, ": read error after line ", line_));
    return false;
  }
  ++line_;
  if (!buf_.empty() && buf_.back() == '\r') buf_.pop_back();
  if (buf_.find_first_not_of(" \t") == std::string::npos)
    throw JsonError(detail::concat(where(), ": blank line (JSON Lines needs one object per line)"));
  JsonValue v;
  try {
    v = parse_json_value(buf_);
  } catch (const JsonSyntaxError& e) {
    throw JsonError(detail::concat(where(), ", column ", e.offset() + 1, ": ", e.problem()));
  }
  if (!v.is_object())
    throw JsonError(detail::concat(where(), ": line holds ", v.kind_phrase(), ", expected an object"));
  obj = std::move(v);
  return true;
}

std::string JsonlReader::where() const { return detail::concat(path_, ":", line_); }

}  // namespace mg
