#pragma once

#include "common.hpp"

namespace xdpguard::bench {

int run_cost(const Args&);     // cost.cpp
int run_scale(const Args&);    // scale.cpp
int run_control(const Args&);  // scale.cpp
int run_attach(const Args&);   // live.cpp
int run_gen(const Args&);      // live.cpp
int run_filter_ports(const Args&);  // live.cpp
int run_default_policy(const Args&);  // live.cpp

}  // namespace xdpguard::bench
