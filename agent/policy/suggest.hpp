// "did you mean ...": the names an operator most likely meant when a key,
// peer set, protocol or profile is unknown.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace xdpguard::policy {

// Edit distance (insertions, deletions, substitutions and swaps of two
// neighbouring characters, each 1; case ignored).
size_t edit_distance(std::string_view a, std::string_view b);

// "; did you mean 'x'?" (or "'x' or 'y'" on a tie) when a candidate is within
// a third of the word's length (at least 1, at most 2 edits) of `word`; ""
// otherwise, so a word that resembles nothing gets no guess.
std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates);
std::string did_you_mean(std::string_view word, std::span<const std::string> candidates);

}  // namespace xdpguard::policy
