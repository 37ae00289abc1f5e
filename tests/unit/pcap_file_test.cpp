// The classic pcap reader (capture/pcap_file): both timestamp precisions and
// byte orders, files tcpdump itself writes, and every way a file can be cut
// short or corrupt (an error naming the problem, never a crash).
//
// Expected behaviour:
// - frames come back in order, byte for byte, with their time in ns
//   (microsecond files scaled), whatever the byte order of the file;
// - what `tcpdump -r IN -w OUT` writes (microseconds) and what it writes with
//   --time-stamp-precision=nano read back the same frames and times;
// - pcapng, other magics, link types other than Ethernet, truncated headers
//   and records, absurd record lengths and timestamp fractions are refused
//   with a message saying what is wrong (and, for pcapng, how to convert);
// - a valid file cut at every length reads without crashing: whole records
//   before the cut are delivered, then an error unless the cut falls between
//   records.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "capture/pcap_file.hpp"

namespace xdpguard::capture {
namespace {

namespace fs = std::filesystem;

struct Frame {
  std::vector<uint8_t> bytes;
  uint64_t ns;
  bool operator==(const Frame&) const = default;
};

// A classic pcap file: `nano` picks the magic, `big` the byte order.
std::vector<uint8_t> pcap_bytes(const std::vector<Frame>& frames, bool nano, bool big,
                                uint32_t linktype = 1) {
  std::vector<uint8_t> out;
  auto put32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (big ? 24 - 8 * i : 8 * i)));
  };
  auto put16 = [&](uint16_t v) {
    out.push_back(static_cast<uint8_t>(big ? v >> 8 : v));
    out.push_back(static_cast<uint8_t>(big ? v : v >> 8));
  };
  put32(nano ? 0xA1B23C4D : 0xA1B2C3D4);
  put16(2);
  put16(4);
  put32(0);
  put32(0);
  put32(262144);
  put32(linktype);
  for (const auto& f : frames) {
    put32(static_cast<uint32_t>(f.ns / 1'000'000'000));
    const uint64_t frac = f.ns % 1'000'000'000;
    put32(static_cast<uint32_t>(nano ? frac : frac / 1000));
    put32(static_cast<uint32_t>(f.bytes.size()));
    put32(static_cast<uint32_t>(f.bytes.size()));
    out.insert(out.end(), f.bytes.begin(), f.bytes.end());
  }
  return out;
}

class PcapFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/xdpguard-pcap-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::vector<uint8_t>& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return path;
  }

  // The frames read and the error, if any.
  std::pair<std::vector<Frame>, std::optional<std::string>> read(const std::string& path) {
    std::vector<Frame> got;
    auto err = read_pcap(path, [&](std::span<const uint8_t> f, uint64_t ns) {
      got.push_back({{f.begin(), f.end()}, ns});
    });
    return {got, err};
  }

  fs::path dir_;
};

// Three Ethernet-sized frames with distinct bytes; times in whole microseconds
// unless `nano_times`.
std::vector<Frame> sample_frames(bool nano_times) {
  std::vector<Frame> out;
  for (size_t i = 0; i < 3; ++i) {
    Frame f;
    f.bytes.resize(60 + 500 * i);
    for (size_t k = 0; k < f.bytes.size(); ++k) f.bytes[k] = static_cast<uint8_t>(k * 7 + i);
    f.bytes[12] = 0x08;  // an IPv4 ethertype, so tcpdump has something to print
    f.bytes[13] = 0x00;
    f.ns = 1'700'000'000'000'000'000ULL + i * 1'234'567'000ULL + (nano_times ? 89 * i : 0);
    out.push_back(f);
  }
  return out;
}

TEST_F(PcapFile, BothPrecisionsAndByteOrders) {
  for (bool nano : {false, true})
    for (bool big : {false, true}) {
      const auto frames = sample_frames(nano);
      auto [got, err] = read(write("f.pcap", pcap_bytes(frames, nano, big)));
      EXPECT_FALSE(err) << *err;
      EXPECT_EQ(got, frames) << "nano " << nano << " big-endian " << big;
    }
}

TEST_F(PcapFile, EmptyCaptureHasNoFrames) {
  auto [got, err] = read(write("empty.pcap", pcap_bytes({}, false, false)));
  EXPECT_FALSE(err);
  EXPECT_TRUE(got.empty());
}

// tcpdump (Debian's, with its own libpcap) rewrites our file in both
// precisions; what it writes must read back as the same frames.
TEST_F(PcapFile, ReadsWhatTcpdumpWrites) {
  const auto frames = sample_frames(true);
  const std::string in = write("in.pcap", pcap_bytes(frames, true, false));
  for (bool nano : {false, true}) {
    const std::string out = (dir_ / (nano ? "nano.pcap" : "micro.pcap")).string();
    const std::string cmd = "tcpdump -q -n " +
                            std::string(nano ? "--time-stamp-precision=nano " : "") + "-r " +
                            in + " -w " + out + " 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    // tcpdump writes its native byte order and the magic of the precision.
    std::ifstream f(out, std::ios::binary);
    uint32_t magic = 0;
    f.read(reinterpret_cast<char*>(&magic), 4);
    EXPECT_EQ(magic, nano ? 0xA1B23C4DU : 0xA1B2C3D4U);
    auto [got, err] = read(out);
    ASSERT_FALSE(err) << *err;
    ASSERT_EQ(got.size(), frames.size());
    for (size_t i = 0; i < frames.size(); ++i) {
      EXPECT_EQ(got[i].bytes, frames[i].bytes);
      EXPECT_EQ(got[i].ns, nano ? frames[i].ns : frames[i].ns / 1000 * 1000);
    }
  }
}

TEST_F(PcapFile, RefusesOtherFormatsWithAHint) {
  // The first block of a pcapng file: a Section Header Block.
  std::vector<uint8_t> ng = {0x0A, 0x0D, 0x0D, 0x0A, 0x1C, 0, 0, 0, 0x4D, 0x3C, 0x2B, 0x1A,
                             1,    0,    0,    0,    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                             0xFF, 0x1C, 0,    0,    0};
  auto [g1, e1] = read(write("x.pcapng", ng));
  ASSERT_TRUE(e1);
  EXPECT_NE(e1->find("pcapng"), std::string::npos) << *e1;
  EXPECT_NE(e1->find("editcap -F pcap"), std::string::npos) << *e1;
  EXPECT_NE(e1->find("tcpdump -w"), std::string::npos) << *e1;

  auto [g2, e2] = read(write("text.pcap", {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'}));
  ASSERT_TRUE(e2);
  EXPECT_NE(e2->find("not a pcap file"), std::string::npos) << *e2;

  // Linux cooked capture (tcpdump -i any): no Ethernet header to decide on.
  auto [g3, e3] = read(write("sll.pcap", pcap_bytes(sample_frames(false), false, false, 113)));
  ASSERT_TRUE(e3);
  EXPECT_NE(e3->find("link type 113"), std::string::npos) << *e3;
  EXPECT_NE(e3->find("not -i any"), std::string::npos) << *e3;
  EXPECT_TRUE(g3.empty());

  auto [g4, e4] = read((dir_ / "missing.pcap").string());
  ASSERT_TRUE(e4);
  EXPECT_NE(e4->find("No such file"), std::string::npos) << *e4;
}

TEST_F(PcapFile, CorruptRecordsAreRefused) {
  const auto frames = sample_frames(false);
  auto bytes = pcap_bytes(frames, false, false);
  const size_t second = 24 + 16 + frames[0].bytes.size();  // the second record header

  auto huge = bytes;
  huge[second + 8 + 3] = 0x7F;  // caplen 0x7Fxxxxxx
  auto [g1, e1] = read(write("huge.pcap", huge));
  ASSERT_TRUE(e1);
  EXPECT_NE(e1->find("frame 2"), std::string::npos) << *e1;
  EXPECT_NE(e1->find("corrupt record length"), std::string::npos) << *e1;
  EXPECT_EQ(g1.size(), 1u);  // the frame before it was delivered

  auto frac = bytes;
  frac[second + 4 + 3] = 0x7F;  // 2 billion microseconds
  auto [g2, e2] = read(write("frac.pcap", frac));
  ASSERT_TRUE(e2);
  EXPECT_NE(e2->find("corrupt timestamp"), std::string::npos) << *e2;
}

TEST_F(PcapFile, EveryTruncationIsAnErrorOrARecordBoundary) {
  const auto frames = sample_frames(false);
  const auto bytes = pcap_bytes(frames, false, true);
  std::vector<size_t> boundaries = {24};
  for (const auto& f : frames) boundaries.push_back(boundaries.back() + 16 + f.bytes.size());
  for (size_t len = 0; len <= bytes.size(); ++len) {
    auto [got, err] =
        read(write("cut.pcap", std::vector<uint8_t>(bytes.begin(), bytes.begin() + len)));
    size_t whole = 0;
    while (whole < frames.size() && boundaries[whole + 1] <= len) ++whole;
    ASSERT_EQ(got.size(), whole) << "cut at " << len;
    for (size_t i = 0; i < whole; ++i) ASSERT_EQ(got[i], frames[i]) << "cut at " << len;
    const bool at_boundary = std::find(boundaries.begin(), boundaries.end(), len) != boundaries.end();
    ASSERT_EQ(!err, at_boundary) << "cut at " << len << ": " << err.value_or("no error");
    if (err && len >= 24) EXPECT_NE(err->find("truncated"), std::string::npos) << *err;
  }
}

}  // namespace
}  // namespace xdpguard::capture
