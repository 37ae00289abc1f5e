// Observations + the policy in force -> a proposed policy file and the
// report behind it (docs/learn.md).
//
// For each peer set still to be filled in (PeerSet::to_fill_in) that a rule
// in force uses, the proposal lists the confirmed peers seen on its rules,
// aggregated (learn/aggregate.hpp), with their evidence as comments. A filled
// set keeps its prefixes and gains the confirmed peers audit mode saw it
// refuse. Unconfirmed peers are never proposed, except, with
// include_unconfirmable, those seen only on rules where the protocol gives a
// peer no way to confirm (confirmable()). A set whose rules saw nothing is
// left as it was and listed, not guessed, unless empty_unseen says to empty it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "learn/aggregate.hpp"
#include "learn/observations.hpp"
#include "policy/model.hpp"

namespace xdpguard::learn {

struct ProposeOptions {
  AggregateOptions aggregate;
  bool include_unconfirmable = false;
  bool empty_unseen = false;  // sets whose rules saw nothing become empty (the operator's choice)
  int64_t since = 0;       // Unix seconds: sightings last seen before are left out
  std::string generated;   // the header line's "when and from what"
};

struct RuleReport {
  std::string id;
  std::string set;
  bool learned = false;       // its set is still to be filled in
  bool unconfirmable = false;  // !confirmable(rule): its peers cannot confirm through it
  size_t peers = 0, confirmed = 0;
  uint64_t packets = 0;
  uint64_t overflow = 0;      // peers not recorded: the learn table was full
};

struct SetReport {
  std::string name;
  bool open = false;        // replaced by what was learned; otherwise extended
  bool no_traffic = false;  // open, and no rule of it saw a peer: left as it was, or emptied
  bool from_file = false;   // listed in a file: the proposal cannot rewrite it
  std::vector<Evidence> confirmed;     // proposed (before aggregation)
  std::vector<Evidence> unconfirmable;  // seen only on unconfirmable rules, never confirmed
  std::vector<Evidence> unconfirmed;   // seen, not confirmed: not proposed
  std::vector<Prefix> proposed;        // what the set lists now (added, for a filled set)
};

struct Proposal {
  std::vector<RuleReport> rules;  // rules in force, policy order
  std::vector<SetReport> sets;    // sets with something to say, policy order
  std::string text;               // the proposed policy file
  uint64_t confirm_overflow = 0;
};

// Whether a peer can prove through this rule that it receives the host's
// packets: a TCP peer by completing the handshake, any peer by answering a
// flow the host opened. A receive-only rule never answers it, and UDP or ICMP
// the host only answers proves nothing: a blind spoofer is answered too.
bool confirmable(const policy::Rule& rule);

// `text` is the policy file `policy` was parsed from.
Proposal propose(const policy::Policy& policy, const std::string& text,
                 const policy::RuleSet& rules, const Observations& seen,
                 const ProposeOptions& options);

}  // namespace xdpguard::learn
