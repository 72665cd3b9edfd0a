// bench/peer_config.h: cpu_description, the "# cpu: ..." of every benchmark header. The machines'
// model names are masked ("AMD EPYC"), so the ids from /proc/cpuinfo tell CPU generations apart.
#include <doctest/doctest.h>

#include <string>

#include "bench/peer_config.h"

namespace {

// The first lines of a /proc/cpuinfo processor block, as the kernel writes them (tab-aligned keys).
std::string cpuinfo(const std::string& vendor, const std::string& family, const std::string& model,
                    const std::string& model_name, const std::string& stepping) {
  return "processor\t: 0\n"
         "vendor_id\t: " + vendor + "\n"
         "cpu family\t: " + family + "\n"
         "model\t\t: " + model + "\n"
         "model name\t: " + model_name + "\n"
         "stepping\t: " + stepping + "\n"
         "cpu MHz\t\t: 2096.011\n"
         "flags\t\t: fpu vme avx2 avx512f\n"
         "\n";
}

}  // namespace

TEST_CASE("cpu_description: this project's Zen 5 machine (family 26 model 2)") {
  CHECK(mg::bench::cpu_description(cpuinfo("AuthenticAMD", "26", "2", "AMD EPYC", "1")) ==
        "AMD EPYC (AuthenticAMD family 26 model 2 stepping 1: Zen 5)");
}

TEST_CASE("cpu_description: a Zen 4 (family 25 model 17)") {
  CHECK(mg::bench::cpu_description(cpuinfo("AuthenticAMD", "25", "17", "AMD EPYC", "1")) ==
        "AMD EPYC (AuthenticAMD family 25 model 17 stepping 1: Zen 4)");
  // Zen 3 and Zen 2 for contrast: the family alone does not name the generation.
  CHECK(mg::bench::cpu_description(cpuinfo("AuthenticAMD", "25", "1", "AMD EPYC 7763 64-Core Processor", "1")) ==
        "AMD EPYC 7763 64-Core Processor (AuthenticAMD family 25 model 1 stepping 1: Zen 3)");
  CHECK(mg::bench::cpu_description(cpuinfo("AuthenticAMD", "23", "49", "AMD EPYC 7B12", "0")) ==
        "AMD EPYC 7B12 (AuthenticAMD family 23 model 49 stepping 0: Zen 2)");
}

TEST_CASE("cpu_description: a Sapphire Rapids (GenuineIntel family 6 model 143)") {
  CHECK(mg::bench::cpu_description(cpuinfo("GenuineIntel", "6", "143", "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz",
                                           "8")) ==
        "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz (GenuineIntel family 6 model 143 stepping 8: Sapphire Rapids)");
  CHECK(mg::bench::cpu_description(cpuinfo("GenuineIntel", "6", "85", "Intel Xeon Processor", "7")) ==
        "Intel Xeon Processor (GenuineIntel family 6 model 85 stepping 7: Skylake-SP/Cascade Lake/Cooper Lake)");
}

TEST_CASE("cpu_description: an unknown model prints its numbers without a name") {
  CHECK(mg::bench::cpu_description(cpuinfo("GenuineIntel", "6", "151", "12th Gen Intel(R) Core(TM) i7", "2")) ==
        "12th Gen Intel(R) Core(TM) i7 (GenuineIntel family 6 model 151 stepping 2)");
  // Family 26 holds Zen 6 models too (0x50-0x5f): not called Zen 5.
  CHECK(mg::bench::cpu_description(cpuinfo("AuthenticAMD", "26", "80", "AMD EPYC", "0")) ==
        "AMD EPYC (AuthenticAMD family 26 model 80 stepping 0)");
  CHECK(mg::bench::cpu_description(cpuinfo("HygonGenuine", "24", "1", "Hygon C86 7185 32-core Processor", "1")) ==
        "Hygon C86 7185 32-core Processor (HygonGenuine family 24 model 1 stepping 1)");
}

TEST_CASE("cpu_description: missing fields") {
  // Only the first CPU is read; "model name" is not taken for "model".
  CHECK(mg::bench::cpu_description(cpuinfo("AuthenticAMD", "26", "2", "AMD EPYC", "1") +
                                   cpuinfo("GenuineIntel", "6", "143", "other", "8")) ==
        "AMD EPYC (AuthenticAMD family 26 model 2 stepping 1: Zen 5)");
  CHECK(mg::bench::cpu_description("vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 97\n") ==
        "unknown (AuthenticAMD family 25 model 97: Zen 4)");
  // No x86 ids (an ARM cpuinfo has none of these keys): the model name alone, or "unknown".
  CHECK(mg::bench::cpu_description("processor\t: 0\nmodel name\t: ARMv8 Processor rev 1 (v8l)\nBogoMIPS\t: 50.00\n") ==
        "ARMv8 Processor rev 1 (v8l)");
  CHECK(mg::bench::cpu_description("") == "unknown");
}
