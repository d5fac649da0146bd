// Small text and file helpers shared by the parsers.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pgfo {

// A value as messages show it: single-quoted, control characters as \xNN,
// cut after max_chars with "..." (0: never cut).
std::string show_value(const std::string &v, size_t max_chars = 0);

// `v` with its control characters (newline, carriage return, tab, escape,
// DEL...) as \xNN, as show_value writes them, and nothing else changed.
std::string escape_controls(std::string_view v);

// True when `v` holds a control character escape_controls would rewrite.
bool has_controls(std::string_view v);

// The items with `sep` between them: "a, b, c".
std::string join(const std::vector<std::string> &items, const char *sep = ", ");

// The directory part of `path`: "/a/b" for "/a/b/c", "/" for "/c", "." for "c".
std::string parent_directory(const std::string &path);

// The whole of a small file. Throws pgfo::Error(PGFO_ERR_CONFIG,
// "cannot read <what> <path>: <reason>") when it cannot be read or is larger
// than max_bytes.
std::string read_small_file(const std::string &path, size_t max_bytes, const std::string &what);

} // namespace pgfo
