// Driver for builtin_fp16.h: all halves -> f32 (h2f.bin); f32.bin / f64.bin -> f16 (f2h.bin, d2h.bin).
// tests/test_runtime_compat.py compares the outputs with numpy.
#include <builtin_fp16.h>
#include <cstdio>
#include <cstdint>
int main(int argc, char** argv) {
  // mode 0: all halves -> float bits; mode 1: read float bits from stdin -> half; mode 2: doubles
  FILE* out = fopen("h2f.bin", "wb");
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = __extendXfYf2__<uint16_t, uint16_t, 10, float, uint32_t, 23>((uint16_t)h);
    fwrite(&f, 4, 1, out);
  }
  fclose(out);
  FILE* in = fopen("f32.bin", "rb"); FILE* o2 = fopen("f2h.bin", "wb");
  float f;
  while (fread(&f, 4, 1, in) == 1) {
    uint16_t h = __truncXfYf2__<float, uint32_t, 23, uint16_t, uint16_t, 10>(f);
    fwrite(&h, 2, 1, o2);
  }
  fclose(in); fclose(o2);
  in = fopen("f64.bin", "rb"); o2 = fopen("d2h.bin", "wb");
  double d;
  while (fread(&d, 8, 1, in) == 1) {
    uint16_t h = __truncXfYf2__<double, uint64_t, 52, uint16_t, uint16_t, 10>(d);
    fwrite(&h, 2, 1, o2);
  }
  fclose(in); fclose(o2);
  return 0;
}
