// libbpf prints (including the verifier log when a load fails) go to spdlog:
// warnings always, libbpf's info/debug chatter only at debug level (-v).
#pragma once

namespace xdpguard::kernel {

// Idempotent; call once before opening any BPF object.
void route_libbpf_to_spdlog();

}  // namespace xdpguard::kernel
