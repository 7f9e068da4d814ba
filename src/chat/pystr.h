// Python str operations on UTF-8 strings (code point based): strip, split, case mapping,
// splitlines, replace, find/count, padding, and HTML escaping.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace modu::jinja::pystr {

// str.strip/lstrip/rstrip; chars == nullopt strips whitespace.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split / str.rsplit; sep == nullopt splits on runs of whitespace.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string swapcase(std::string_view s);
std::string title(std::string_view s);       // Python str.title()
std::string capitalize(std::string_view s);  // Python str.capitalize()
std::string replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count);
// Code point index of `sub` in s[start:end] (forward or reverse), or -1.
int64_t find(std::string_view s, std::string_view sub, bool reverse);
int64_t count(std::string_view s, std::string_view sub);
std::string pad(std::string_view s, int64_t width, char32_t fill, char align);  // align '<' '>' '^'
std::string html_escape(std::string_view s);
bool is_upper(char32_t c);
bool is_lower(char32_t c);
char32_t to_upper(char32_t c);
char32_t to_lower(char32_t c);
bool is_alpha(char32_t c);
bool is_digit(char32_t c);

}  // namespace modu::jinja::pystr
