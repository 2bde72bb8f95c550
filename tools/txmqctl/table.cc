#include "tools/txmqctl/table.h"

#include <algorithm>
#include <sstream>

namespace txmq::ctl {

size_t DisplayWidth(const std::string& text) {
  size_t width = 0;
  for (unsigned char c : text) width += (c & 0xc0) != 0x80;
  return width;
}

namespace {

void Pad(std::ostream& out, const std::string& cell, size_t width) {
  out << cell;
  for (size_t w = DisplayWidth(cell); w < width; ++w) out << ' ';
}

}  // namespace

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

void Table::Print(std::ostream& out, const std::string& empty_note) const {
  if (rows_.empty()) {
    out << "(" << empty_note << ")\n";
    return;
  }
  std::vector<size_t> widths(headers_.size());
  for (size_t c = 0; c < headers_.size(); ++c) {
    widths[c] = DisplayWidth(headers_[c]);
    for (const auto& row : rows_) widths[c] = std::max(widths[c], DisplayWidth(row[c]));
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::ostringstream text;
    for (size_t c = 0; c < cells.size(); ++c) Pad(text, cells[c], widths[c] + 2);
    std::string l = text.str();
    l.erase(l.find_last_not_of(' ') + 1);  // no trailing blanks, also after empty cells
    out << l << "\n";
  };
  line(headers_);
  for (const auto& row : rows_) line(row);
}

void Fields::Print(std::ostream& out) const {
  size_t width = 0;
  for (const auto& [name, value] : fields_) width = std::max(width, DisplayWidth(name));
  for (const auto& [name, value] : fields_) {
    Pad(out, name, width + 2);
    out << value << "\n";
  }
}

}  // namespace txmq::ctl
