// Output for people: aligned columns (kubectl style) and "key  value"
// blocks. Scripts use --json instead; nothing here is meant to be parsed.
#pragma once

#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace txmq::ctl {

class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

  // Missing cells print empty; extra cells are an error of the caller and
  // are dropped.
  void AddRow(std::vector<std::string> cells);
  size_t rows() const { return rows_.size(); }

  // Header and rows, each column as wide as its widest cell, two spaces
  // apart. With no rows prints `empty_note` (e.g. "no topics") instead, so a
  // person sees the command worked.
  void Print(std::ostream& out, const std::string& empty_note) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// "name   value" lines with the values aligned.
class Fields {
 public:
  void Add(std::string name, std::string value) {
    fields_.emplace_back(std::move(name), std::move(value));
  }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// Characters on screen (UTF-8 code points), not bytes: ids are ASCII but
// keys and errors need not be.
size_t DisplayWidth(const std::string& text);

}  // namespace txmq::ctl
