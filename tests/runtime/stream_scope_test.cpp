// Device::use_stream and StreamScope on the CPU, which has no streams: none is accepted, any
// other is a clear error that changes nothing. (The CUDA side is gpu_moe_test's
// CallersStreamOrdersTheLayersWork.)
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "runtime/context.h"

namespace switchyard {
namespace {

TEST(StreamScope, TheCpuTakesNoStream) {
  Device& cpu = Context::global().cpu();
  EXPECT_EQ(cpu.use_stream(nullptr), nullptr);
  { StreamScope none(cpu, nullptr); }
  void* stream = reinterpret_cast<void*>(kLegacyDefaultStream);
  try {
    StreamScope scope(cpu, stream);
    ADD_FAILURE() << "no error for a stream on the CPU";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("stream 0x1 for cpu: the CPU device has no streams"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(cpu.use_stream(nullptr), nullptr) << "the refused stream was not taken";
}

}  // namespace
}  // namespace switchyard
