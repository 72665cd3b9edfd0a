#include "report/csv.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include "core/atomic_file.h"
#include "core/error.h"

namespace mg::report {

namespace {
std::string quote(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::vector<std::string> split_line(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool in_q = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (in_q) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') cur += '"', ++i;
      else if (c == '"') in_q = false;
      else cur += c;
    } else if (c == '"') {
      in_q = true;
    } else if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += quote(v[i]);
  }
  return s;
}
}  // namespace

std::string csv_num(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.10g", v);
  return b;
}

CsvWriter::CsvWriter(const std::string& path, const std::vector<std::string>& columns, bool append)
    : path_(path), ncols_(columns.size()) {
  struct stat st;
  bool exists = ::stat(path.c_str(), &st) == 0 && st.st_size > 0;
  if (append && exists) {
    CsvTable t = read_csv(path);
    MG_CHECK(t.columns == columns, "csv '", path, "': existing header '", join(t.columns), "' differs from '",
             join(columns), "'");
  }
  f_ = std::fopen(path.c_str(), append ? "a" : "w");
  MG_CHECK(f_ != nullptr, "csv: cannot open '", path, "' for writing");
  if (!(append && exists)) {
    std::fprintf(f_, "%s\n", join(columns).c_str());
    std::fflush(f_);
  }
}

CsvWriter::~CsvWriter() {
  if (f_) std::fclose(f_);
}

void CsvWriter::row(const std::vector<std::string>& values) {
  MG_CHECK(values.size() == ncols_, "csv '", path_, "': row has ", values.size(), " values for ", ncols_, " columns");
  // A full disk must stop the run with a message, not drop rows silently.
  const std::string line = join(values) + "\n";
  if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() || std::fflush(f_) != 0)
    throw Error("csv '" + path_ + "': cannot write a row: " + std::strerror(errno));
}

int CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == name) return int(i);
  return -1;
}

void write_csv(const std::string& path, const CsvTable& table) {
  std::string text = join(table.columns) + "\n";
  for (const auto& r : table.rows) {
    MG_CHECK(r.size() == table.columns.size(), "csv '", path, "': row has ", r.size(), " values for ",
             table.columns.size(), " columns");
    text += join(r) + "\n";
  }
  try {
    write_file_atomically(path, text);
  } catch (const AtomicFileError& e) {
    throw Error(std::string("csv: ") + e.what());
  }
}

CsvTable read_csv(const std::string& path) {
  std::ifstream in(path);
  MG_CHECK(in.good(), "csv: cannot read '", path, "'");
  CsvTable t;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    auto fields = split_line(line);
    if (t.columns.empty()) {
      t.columns = fields;
      continue;
    }
    MG_CHECK(fields.size() == t.columns.size(), "csv '", path, "' line ", line_no, ": ", fields.size(),
             " fields, header has ", t.columns.size());
    t.rows.push_back(std::move(fields));
  }
  return t;
}

}  // namespace mg::report
