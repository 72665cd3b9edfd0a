// JSON Lines files (one object per line) for the data pipeline. The JSON itself is core/json.h's
// reader (this header also brings in core/utf8.h's validator, which the JSON Lines readers use to
// decide what invalid UTF-8 means for them: the corpus readers keep it and count it, the
// retrieval-pair readers reject it).
#pragma once

#include <cstddef>
#include <fstream>
#include <string>

#include "core/json.h"
#include "core/utf8.h"

namespace mg {

// Reads a JSON Lines file front to back: every line (terminated by '\n', the last one may lack
// it; a '\r' before the '\n' is ignored) must hold exactly one JSON object. Blank lines are
// errors, as the format has no place for them.
class JsonlReader {
 public:
  // Throws JsonError naming the file when it cannot be opened.
  explicit JsonlReader(std::string path);

  // Parses the next line into `obj` and returns true, or returns false at the end of the file.
  // Throws JsonError "<path>:<line>: ..." for a line that is blank, not valid JSON, or valid JSON
  // other than an object.
  bool next(JsonValue& obj);

  // 1-based number of the line last returned by next() (0 before the first).
  std::size_t line() const { return line_; }
  const std::string& path() const { return path_; }
  // "<path>:<line>", for callers' messages about the current record.
  std::string where() const;

 private:
  std::string path_;
  std::ifstream in_;
  std::string buf_;
  std::size_t line_ = 0;
};

}  // namespace mg
