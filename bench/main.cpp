// xdpguard-bench: the benchmark suite's one binary (bench/run.sh drives it).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstring>

#include "subcommands.hpp"

int main(int argc, char** argv) {
  using namespace xdpguard::bench;
  if (argc < 2) {
    fmt::print(stderr,
               "usage: xdpguard-bench cost|scale|control|attach|gen|filter-ports|default-policy [--key value...]\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  Args args = Args::parse(argc - 2, argv + 2);
  std::string cmd = argv[1];
  if (cmd == "cost") return run_cost(args);
  if (cmd == "scale") return run_scale(args);
  if (cmd == "control") return run_control(args);
  if (cmd == "attach") return run_attach(args);
  if (cmd == "gen") return run_gen(args);
  if (cmd == "filter-ports") return run_filter_ports(args);
  if (cmd == "default-policy") return run_default_policy(args);
  fmt::print(stderr, "xdpguard-bench: unknown subcommand {}\n", cmd);
  return 2;
}
