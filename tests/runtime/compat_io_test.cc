// Native unit test of Hearth's compat headers (serializer wire format, streams, base64,
// utils, ring buffer, arena); built and run by tests/test_runtime_compat.py.
#include <tvm/support/io.h>
#include <tvm/support/serializer.h>
#include <tvm/support/cuda/nvtx.h>
#include "support/bytes_io.h"
#include "support/base64.h"
#include "support/utils.h"
#include "support/ring_buffer.h"
#include "support/arena.h"
#include <cassert>
#include <cstdio>
#include <random>
using namespace tvm;
using namespace tvm::support;
enum class Color : int16_t { kRed = 1, kBlue = -2 };
#define CHECK(x) do { if (!(x)) { std::printf("FAIL %s:%d %s\n", __FILE__, __LINE__, #x); return 1; } } while (0)
static std::string hex(const std::string& s) { std::string r; char b[4]; for (unsigned char c : s) { std::snprintf(b, 4, "%02x", c); r += b; } return r; }
int main() {
  std::string buf;
  {
    BytesOutStream out(&buf);
    out.Write(uint64_t(0x0102030405060708ULL));
    out.Write(std::string("ab"));
    out.Write(ffi::String("xyz"));
    std::vector<int64_t> v{1, -1};
    out.Write(v);
    DLDataType dt{kDLFloat, 32, 4};
    out.Write(dt);
    DLDevice dev{kDLWebGPU, 3};
    out.Write(dev);
    out.Write(Color::kBlue);
    std::unordered_map<std::string, std::string> m{{"k", "v"}};
    out.Write(m);
    ffi::Array<ffi::String> arr{"p", "qq"};
    out.Write(arr);
    ffi::Map<ffi::String, ffi::Array<ffi::String>> fm;
    fm.Set("f", ffi::Array<ffi::String>{"z"});
    out.Write(fm);
    out.Write(std::pair<int32_t, double>(7, 0.5));
    out.Write(ffi::Bytes(std::string("\0\1", 2)));
    out.Write(true);
    int32_t a3[3] = {1, 2, 3};
    out.WriteArray(a3, 3);
  }
  std::string expect =
      "0807060504030201"
      "0200000000000000" "6162"
      "0300000000000000" "78797a"
      "0200000000000000" "0100000000000000" "ffffffffffffffff"
      "02200400"
      "0f00000003000000"
      "feff"
      "0100000000000000" "0100000000000000" "6b" "0100000000000000" "76"
      "0200000000000000" "0100000000000000" "70" "0200000000000000" "7171"
      "0100000000000000" "0100000000000000" "66" "0100000000000000" "0100000000000000" "7a"
      "07000000" "000000000000e03f"
      "0200000000000000" "0001"
      "01"
      "010000000200000003000000";
  if (hex(buf) != expect) { std::printf("got    %s\nexpect %s\n", hex(buf).c_str(), expect.c_str()); return 1; }
  {
    BytesInStream in(buf);
    uint64_t u; CHECK(in.Read(&u) && u == 0x0102030405060708ULL);
    std::string s; CHECK(in.Read(&s) && s == "ab");
    ffi::String fs; CHECK(in.Read(&fs) && fs == "xyz");
    std::vector<int64_t> v; CHECK(in.Read(&v) && v.size() == 2 && v[1] == -1);
    DLDataType dt; CHECK(in.Read(&dt) && dt.code == kDLFloat && dt.bits == 32 && dt.lanes == 4);
    DLDevice dev; CHECK(in.Read(&dev) && dev.device_type == kDLWebGPU && dev.device_id == 3);
    Color c; CHECK(in.Read(&c) && c == Color::kBlue);
    std::unordered_map<std::string, std::string> m; CHECK(in.Read(&m) && m.at("k") == "v");
    ffi::Array<ffi::String> arr; CHECK(in.Read(&arr) && arr.size() == 2 && arr[1] == "qq");
    ffi::Map<ffi::String, ffi::Array<ffi::String>> fm; CHECK(in.Read(&fm) && fm.size() == 1 && fm.at("f")[0] == "z");
    std::pair<int32_t, double> p; CHECK(in.Read(&p) && p.first == 7 && p.second == 0.5);
    ffi::Bytes b; CHECK(in.Read(&b) && b.size() == 2 && b.data()[1] == 1);
    bool t; CHECK(in.Read(&t) && t);
    int32_t a3[3]; CHECK(in.ReadArray(a3, 3) && a3[2] == 3);
    CHECK(in.AtEnd());
    uint32_t x; CHECK(!in.Read(&x));
    std::string s2; CHECK(!in.Read(&s2));
  }
  // truncated container must fail, not crash
  {
    std::string t = buf.substr(0, 12);
    BytesInStream in(t);
    uint64_t u; CHECK(in.Read(&u)); std::string s; CHECK(!in.Read(&s));
  }
  // base64 round trip for all lengths, plus ffi codec agreement
  std::mt19937 rng(1);
  for (size_t n = 0; n < 200; ++n) {
    std::string raw(n, '\0');
    for (auto& ch : raw) ch = static_cast<char>(rng());
    std::string enc;
    { BytesOutStream o(&enc); Base64OutStream b(&o); b.Write(raw.data(), raw.size()); b.Finish(); }
    CHECK(enc == std::string(ffi::Base64Encode(ffi::Bytes(raw))));
    std::string wrapped = "  \n" + enc + (n ? "\n trailing" : "");
    BytesInStream i(wrapped); Base64InStream b(&i); b.InitPosition();
    std::string dec(n, '\0');
    // read in odd chunk sizes
    size_t pos = 0; while (pos < n) { size_t k = std::min<size_t>(n - pos, 1 + rng() % 7); CHECK(b.Read(&dec[pos], k) == k); pos += k; }
    CHECK(dec == raw);
    char extra; CHECK(b.Read(&extra, 1) == 0); CHECK(b.IsEOF());
  }
  { // large (multi-chunk) base64
    std::string raw(100003, '\0'); for (auto& ch : raw) ch = static_cast<char>(rng());
    std::string enc; { BytesOutStream o(&enc); Base64OutStream b(&o); for (size_t i = 0; i < raw.size(); i += 1000) b.Write(raw.data() + i, std::min<size_t>(1000, raw.size() - i)); b.Finish('\n'); }
    CHECK(enc.back() == '\n');
    BytesInStream i(enc); Base64InStream b(&i); b.InitPosition(); std::string dec(raw.size(), '\0'); CHECK(b.Read(&dec[0], dec.size()) == dec.size()); CHECK(dec == raw);
  }
  { // bad input
    std::string bad = "ab~d"; BytesInStream i(bad); Base64InStream b(&i); b.InitPosition(); char c[3];
    bool threw = false; try { b.Read(c, 3); } catch (const ffi::Error&) { threw = true; } CHECK(threw);
  }
  // utils
  CHECK(IsNumber(std::string("0123")) && !IsNumber(ffi::String("")) && !IsNumber("1a"));
  CHECK(StartsWith(ffi::String("RPCSessionTimeoutError: x"), "RPCSessionTimeoutError: "));
  CHECK(!StartsWith(std::string("ab"), "abc") && StartsWith("abc", std::string("abc")));
  CHECK(EndsWith(std::string("model.wasm"), ".wasm") && !EndsWith("a", "ba"));
  auto parts = Split(std::string("a,,b,"), ','); CHECK(parts.size() == 3 && parts[1].empty() && parts[2] == "b");
  CHECK(HashCombine(uint64_t(1), 2u) != HashCombine(uint64_t(2), 1u));
  setenv("HEARTH_T", "True", 1); CHECK(BoolEnvironmentVar("HEARTH_T"));
  setenv("HEARTH_T", "0", 1); CHECK(!BoolEnvironmentVar("HEARTH_T")); CHECK(!BoolEnvironmentVar("HEARTH_UNSET_X"));
  { NVTXScopedRange r("x"); NVTXScopedRange r2(std::string("y")); NVTXScopedRange r3("a" + ffi::String("b")); }
  // ring buffer vs reference deque
  {
    RingBuffer rb; std::string ref; std::string scratch;
    for (int it = 0; it < 20000; ++it) {
      int op = rng() % 4; size_t n = rng() % 9000;
      if (op == 0) { std::string d(n, 0); for (auto& ch : d) ch = char(rng()); rb.Write(d.data(), d.size()); ref += d; }
      else if (op == 1) { n = std::min(n, ref.size()); scratch.resize(n); rb.Read(&scratch[0], n); CHECK(scratch == ref.substr(0, n)); ref.erase(0, n); }
      else if (op == 2) { size_t got = rb.ReadWithCallback([&](const void* p, size_t s) { size_t k = s / 2 + (s & 1); CHECK_CB: ; std::string g(static_cast<const char*>(p), k); if (g != ref.substr(0, k)) std::abort(); ref.erase(0, k); return k; }, n); (void)got; }
      else { std::string d; size_t got = rb.WriteWithCallback([&](void* p, size_t s) { size_t k = s - s / 3; for (size_t i = 0; i < k; ++i) static_cast<char*>(p)[i] = char(rng()); d.assign(static_cast<char*>(p), k); return k; }, n); CHECK(got == d.size()); ref += d; }
      CHECK(rb.bytes_available() == ref.size());
      if (it % 97 == 0) rb.Reserve(rng() % 100);
    }
  }
  // arena
  {
    Arena arena;
    for (int round = 0; round < 3; ++round) {
      std::vector<std::pair<char*, size_t>> blocks;
      for (int i = 0; i < 2000; ++i) {
        size_t n = rng() % 3000 + 1;
        char* p = arena.allocate_<char>(int(n));
        std::memset(p, i & 0xff, n);
        blocks.emplace_back(p, n);
        double* d = arena.allocate_<double>(3); CHECK(reinterpret_cast<uintptr_t>(d) % alignof(double) == 0); d[2] = 1.0;
        struct alignas(64) Big { char c[64]; }; Big* bg = arena.allocate_<Big>(); CHECK(reinterpret_cast<uintptr_t>(bg) % 64 == 0);
      }
      for (size_t i = 0; i < blocks.size(); ++i) for (size_t k = 0; k < blocks[i].second; ++k) CHECK((unsigned char)blocks[i].first[k] == (i & 0xff));
      char* huge = arena.allocate_<char>(1 << 20); huge[(1 << 20) - 1] = 1;
      arena.RecycleAll();
    }
    arena.FreeAll();
  }
  std::printf("all io tests passed\n");
  return 0;
}
