#include "policy/suggest.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

namespace xdpguard::policy {

// Optimal string alignment: Levenshtein plus transpositions, the commonest typo.
size_t edit_distance(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1]))
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[n][m];
}

namespace {

template <class S>
std::string suggest(std::string_view word, std::span<const S> candidates) {
  const size_t limit = std::clamp<size_t>(word.size() / 3, 1, 2);
  size_t best = limit + 1;
  std::vector<std::string_view> names;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d > best) continue;
    if (d < best) names.clear();
    best = d;
    names.push_back(c);
  }
  if (names.empty()) return "";
  std::string out = "; did you mean ";
  for (size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + ("'" + std::string(names[i]) + "'");
  return out + "?";
}

}  // namespace

std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates) {
  return suggest(word, candidates);
}
std::string did_you_mean(std::string_view word, std::span<const std::string> candidates) {
  return suggest(word, candidates);
}

}  // namespace xdpguard::policy
