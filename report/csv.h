#pragma once
// A CSV log that is always a valid file: each row is flushed as written, so a run that stops
// (Ctrl-C, crash) leaves every completed row readable.
#include <cstdio>
#include <string>
#include <vector>

namespace mg::report {

class CsvWriter {
 public:
  // Creates (or, with append, extends) `path` and writes the header when the file is new.
  // Throws mg::Error naming the path on failure; appending to a file with another header throws.
  CsvWriter(const std::string& path, const std::vector<std::string>& columns, bool append = false);
  ~CsvWriter();
  CsvWriter(const CsvWriter&) = delete;
  CsvWriter& operator=(const CsvWriter&) = delete;
  // One value per column; fields containing commas, quotes or newlines are quoted.
  void row(const std::vector<std::string>& values);

 private:
  std::string path_;
  size_t ncols_;
  std::FILE* f_ = nullptr;
};

std::string csv_num(double v);  // shortest round-tripping representation (%.10g)

// Reads a CSV written by CsvWriter: header + rows. Throws naming the file and line on a ragged row.
struct CsvTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
  int column(const std::string& name) const;  // -1 if absent
};
CsvTable read_csv(const std::string& path);

// Replaces `path` with a whole table (header, then rows) in CsvWriter's format, atomically
// (core/atomic_file.h): readers see the old file or the new one. For rewriting a log, e.g.
// dropping the rows a resumed run will redo. Throws mg::Error naming the path for a row without
// one value per column or an I/O failure.
void write_csv(const std::string& path, const CsvTable& table);

}  // namespace mg::report
