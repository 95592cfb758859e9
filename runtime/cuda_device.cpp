#include "runtime/cuda_device.h"

#include <memory>

#include "core/error.h"

namespace switchyard {
namespace {

class CudaKernel final : public LoadedKernel {
 public:
  CudaKernel(const CudaDriver& driver, CUmodule module) : driver_(driver), module_(module) {}
  CudaKernel(const CudaKernel&) = delete;
  CudaKernel& operator=(const CudaKernel&) = delete;
  ~CudaKernel() override {
    if (module_ != nullptr) driver_.cuModuleUnload(module_);
  }
  const CudaDriver& driver_;
  CUmodule module_;
  CUfunction function = nullptr;
  mutable unsigned shared_limit = 48 * 1024;  // dynamic shared memory the function may take
};

}  // namespace

CudaDevice::CudaDevice(int ordinal) : driver_(CudaDriver::get()), ordinal_(ordinal) {
  SY_CHECK(ordinal >= 0 && ordinal < driver_.device_count)
      << "CUDA device " << ordinal << " does not exist; this machine has " << driver_.device_count;
  cuda_check(driver_.cuDeviceGet(&device_, ordinal), "cuDeviceGet");
  int major = 0, minor = 0, sms = 0;
  cuda_check(driver_.cuDeviceGetAttribute(&major, kCuAttrComputeCapabilityMajor, device_), "cuDeviceGetAttribute");
  cuda_check(driver_.cuDeviceGetAttribute(&minor, kCuAttrComputeCapabilityMinor, device_), "cuDeviceGetAttribute");
  cuda_check(driver_.cuDeviceGetAttribute(&sms, kCuAttrMultiprocessorCount, device_), "cuDeviceGetAttribute");
  sm_ = major * 10 + minor;
  multiprocessors_ = static_cast<unsigned>(sms);
  char name[256] = {};
  driver_.cuDeviceGetName(name, sizeof name, device_);
  device_name_ = name;
  cuda_check(driver_.cuDevicePrimaryCtxRetain(&context_, device_), "cuDevicePrimaryCtxRetain");
  make_current();
  cuda_check(driver_.cuStreamCreate(&own_stream_, 0), "cuStreamCreate");
  stream_ = own_stream_;
  cuda_check(driver_.cuStreamCreate(&comm_stream_, 0), "cuStreamCreate");
  cuda_check(driver_.cuEventCreate(&fence_, kCuEventDisableTiming), "cuEventCreate");
  cuda_check(driver_.cuEventCreate(&stream_switch_, kCuEventDisableTiming), "cuEventCreate");
  cuda_check(driver_.cuEventCreate(&release_fence_, kCuEventDisableTiming), "cuEventCreate");
  // NOTE: the default release threshold (0) hands freed memory back to the driver at every
  // synchronization, so each step would allocate from the driver again; keep it all instead.
  cuda_check(driver_.cuDeviceGetDefaultMemPool(&pool_, device_), "cuDeviceGetDefaultMemPool");
  unsigned long long keep_everything = ~0ull;
  cuda_check(driver_.cuMemPoolSetAttribute(pool_, kCuMemPoolAttrReleaseThreshold, &keep_everything),
             "cuMemPoolSetAttribute(release threshold)");
}

CudaDevice::~CudaDevice() {
  if (stream_ != own_stream_ && stream_ != nullptr) driver_.cuStreamSynchronize(stream_);  // a caller's: not ours
  for (CUstream stream : {comm_stream_, own_stream_}) {
    if (stream == nullptr) continue;
    driver_.cuStreamSynchronize(stream);
    driver_.cuStreamDestroy_v2(stream);
  }
  for (CUevent event : {fence_, stream_switch_, release_fence_})
    if (event != nullptr) driver_.cuEventDestroy_v2(event);
  if (context_ != nullptr) driver_.cuDevicePrimaryCtxRelease_v2(device_);
}

void CudaDevice::make_current() const {
  cuda_check(driver_.cuCtxSetCurrent(context_), "cuCtxSetCurrent");
}

std::unique_ptr<LoadedKernel> CudaDevice::load(const Binary& binary) {
  SY_INTERNAL_CHECK(binary.loadable == "kernel.cubin") << "CUDA device cannot load " << binary.loadable;
  make_current();
  CUmodule module = nullptr;
  cuda_check(driver_.cuModuleLoadData(&module, binary.artifacts.at("kernel.cubin").data()),
             ("cuModuleLoadData(" + binary.spec_text + ")").c_str());
  auto kernel = std::make_unique<CudaKernel>(driver_, module);
  kernel->spec_text = binary.spec_text;
  cuda_check(driver_.cuModuleGetFunction(&kernel->function, module, binary.symbol.c_str()), "cuModuleGetFunction");
  return kernel;
}

void CudaDevice::launch(const LoadedKernel& kernel, const LaunchConfig& config, void** params) {
  make_current();
  const auto& k = static_cast<const CudaKernel&>(kernel);
  if (config.shared_bytes > k.shared_limit) {  // more than 48 KB: the function must opt in
    cuda_check(
        driver_.cuFuncSetAttribute(k.function, kCuFuncAttrMaxDynamicSharedBytes, static_cast<int>(config.shared_bytes)),
        ("cuFuncSetAttribute(" + kernel.spec_text + ", " + std::to_string(config.shared_bytes) +
         " bytes of shared memory)")
            .c_str());
    k.shared_limit = config.shared_bytes;
  }
  cuda_check(driver_.cuLaunchKernel(k.function, config.grid, 1, 1, config.block, 1, 1, config.shared_bytes, stream_,
                                    params, nullptr),
             ("cuLaunchKernel(" + kernel.spec_text + ")").c_str());
}

void* CudaDevice::allocate(size_t bytes) {
  make_current();
  CUdeviceptr pointer = 0;
  const CUresult result = driver_.cuMemAllocAsync(&pointer, bytes == 0 ? 256 : bytes, stream_);
  if (result != 0) {
    const std::string call = "cuMemAllocAsync(" + std::to_string(bytes) + " bytes on " + name() +
                             "; this process's buffers peaked at " + std::to_string(memory_high_water().used) +
                             " bytes)";
    cuda_check(result, call.c_str());
  }
  return reinterpret_cast<void*>(pointer);
}

void CudaDevice::hand_out(void* pointer) {
  if (stream_ == own_stream_ || pointer == nullptr) return;
  std::lock_guard<std::mutex> lock(callers_buffers_mutex_);
  callers_buffers_[pointer] = stream_;
}

// Ordered after every launch and copy already on the compute stream, which is where every user
// of a buffer runs (communication waits on it before each collective). A buffer handed out on a
// caller's stream goes back on that stream, after the caller's own later work with it, and, when
// another stream is in use now, after that one's work so far too (an event, no host wait).
// NOTE: only handed-out buffers remember their stream: the layer's own (gradients, momentum)
// live on and are freed on the stream in use then, which must not be a caller's dead stream.
void CudaDevice::release(void* pointer) noexcept {
  if (pointer == nullptr) return;
  std::lock_guard<std::mutex> lock(callers_buffers_mutex_);
  CUstream stream = stream_;
  if (auto it = callers_buffers_.find(pointer); it != callers_buffers_.end()) {
    stream = it->second;
    callers_buffers_.erase(it);
    if (stream != stream_ && driver_.cuEventRecord(release_fence_, stream_) == 0)
      driver_.cuStreamWaitEvent(stream, release_fence_, 0);
  }
  driver_.cuMemFreeAsync(reinterpret_cast<CUdeviceptr>(pointer), stream);
}

void* CudaDevice::switch_stream(void* stream) {
  make_current();
  CUstream next = stream == nullptr ? own_stream_ : static_cast<CUstream>(stream);
  void* previous = stream_ == own_stream_ ? nullptr : stream_;
  if (next == stream_) return previous;
  cuda_check(driver_.cuEventRecord(stream_switch_, stream_), "cuEventRecord");
  cuda_check(driver_.cuStreamWaitEvent(next, stream_switch_, 0), "cuStreamWaitEvent (switching streams)");
  stream_ = next;
  return previous;
}

// Memory freed on the stream but not yet reached by it stays in the pool until a later trim.
void CudaDevice::trim_memory() noexcept {
  driver_.cuMemPoolTrimTo(pool_, 0);
}

void CudaDevice::reset_memory_high_water() {
  unsigned long long zero = 0;  // the only value the driver takes: back to the current level
  cuda_check(driver_.cuMemPoolSetAttribute(pool_, kCuMemPoolAttrUsedMemHigh, &zero), "cuMemPoolSetAttribute");
  cuda_check(driver_.cuMemPoolSetAttribute(pool_, kCuMemPoolAttrReservedMemHigh, &zero), "cuMemPoolSetAttribute");
}

CudaDevice::MemoryHighWater CudaDevice::memory_high_water() const {
  MemoryHighWater high;
  driver_.cuMemPoolGetAttribute(pool_, kCuMemPoolAttrUsedMemHigh, &high.used);
  driver_.cuMemPoolGetAttribute(pool_, kCuMemPoolAttrReservedMemHigh, &high.reserved);
  return high;
}

void CudaDevice::fill_zero(void* pointer, size_t bytes) {
  if (bytes == 0) return;
  make_current();
  cuda_check(driver_.cuMemsetD8Async(reinterpret_cast<CUdeviceptr>(pointer), 0, bytes, stream_), "cuMemsetD8Async");
}

bool CudaDevice::register_host(void* host, size_t bytes) noexcept {
  if (bytes == 0 || driver_.cuCtxSetCurrent(context_) != 0) return false;
  return driver_.cuMemHostRegister_v2(host, bytes, 0) == 0;
}

void CudaDevice::unregister_host(void* host) noexcept {
  // NOTE: nothing to do on failure (no context, not registered): the memory is freed next.
  if (driver_.cuCtxSetCurrent(context_) == 0) driver_.cuMemHostUnregister(host);
}

void CudaDevice::write_from_host(void* device_dst, const void* host_src, size_t bytes) {
  if (bytes == 0) return;
  wait_idle();
  cuda_check(driver_.cuMemcpyHtoD_v2(reinterpret_cast<CUdeviceptr>(device_dst), host_src, bytes), "cuMemcpyHtoD");
}

void CudaDevice::read_to_host(void* host_dst, const void* device_src, size_t bytes) {
  if (bytes == 0) return;
  wait_idle();
  cuda_check(driver_.cuMemcpyDtoH_v2(host_dst, reinterpret_cast<CUdeviceptr>(device_src), bytes), "cuMemcpyDtoH");
}

void CudaDevice::copy_within(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  make_current();
  cuda_check(driver_.cuMemcpyDtoDAsync_v2(reinterpret_cast<CUdeviceptr>(dst), reinterpret_cast<CUdeviceptr>(src), bytes,
                                          stream_),
             "cuMemcpyDtoDAsync");
}

void CudaDevice::copy_rows(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) {
  make_current();
  CudaMemcpy2D copy{};
  copy.srcMemoryType = kCuMemoryTypeDevice;
  copy.srcDevice = reinterpret_cast<CUdeviceptr>(src);
  copy.srcPitch = src_pitch;
  copy.dstMemoryType = kCuMemoryTypeDevice;
  copy.dstDevice = reinterpret_cast<CUdeviceptr>(dst);
  copy.dstPitch = dst_pitch;
  copy.WidthInBytes = width;
  copy.Height = rows;
  cuda_check(driver_.cuMemcpy2DAsync_v2(&copy, stream_), "cuMemcpy2DAsync");
}

namespace {

// A stream or event query as 0 (done), 1 (still running) or -1 (failed).
int poll_result(CUresult result) {
  constexpr CUresult kSuccess = 0, kNotReady = 600;  // CUDA_SUCCESS, CUDA_ERROR_NOT_READY
  if (result == kSuccess) return 0;
  return result == kNotReady ? 1 : -1;
}

}  // namespace

int CudaDevice::query_stream() const {
  make_current();
  return poll_result(driver_.cuStreamQuery(stream_));
}

comm::CudaStreamHooks CudaDevice::communication_hooks() {
  comm::CudaStreamHooks hooks;
  hooks.stream = comm_stream_;
  hooks.query = [this] {
    make_current();
    return poll_result(driver_.cuStreamQuery(comm_stream_));
  };
  hooks.after_compute = [this] {
    make_current();
    cuda_check(driver_.cuEventRecord(fence_, stream_), "cuEventRecord");
    cuda_check(driver_.cuStreamWaitEvent(comm_stream_, fence_, 0), "cuStreamWaitEvent");
  };
  hooks.mark = [this]() -> std::function<int()> {
    make_current();
    CUevent raw = nullptr;
    cuda_check(driver_.cuEventCreate(&raw, kCuEventDisableTiming), "cuEventCreate");
    std::shared_ptr<CUevent_st> event(raw, [&driver = driver_](CUevent e) { driver.cuEventDestroy_v2(e); });
    cuda_check(driver_.cuEventRecord(raw, comm_stream_), "cuEventRecord");
    return [this, event] {
      make_current();
      return poll_result(driver_.cuEventQuery(event.get()));
    };
  };
  return hooks;
}

void CudaDevice::wait_idle() {
  make_current();
  cuda_check(driver_.cuStreamSynchronize(stream_), "cuStreamSynchronize");
}

kernels::TmaDescriptor CudaDevice::tma_descriptor(DType dtype, const void* base, const unsigned long long (&dims)[3],
                                                  const unsigned long long (&strides)[2],
                                                  const unsigned (&box)[3]) const {
  SY_INTERNAL_CHECK(dtype == DType::kFloat16 || dtype == DType::kBFloat16 || dtype == DType::kFloat32)
      << "tma_descriptor " << dtype_name(dtype);
  kernels::TmaDescriptor map{};
  const unsigned element_strides[3] = {1, 1, 1};
  // float32 as it is stored: wgmma's TF32 reads the top 19 bits of each element.
  const int type = dtype == DType::kFloat16    ? kCuTensorMapFloat16
                   : dtype == DType::kBFloat16 ? kCuTensorMapBFloat16
                                               : kCuTensorMapFloat32;
  const CUresult result = driver_.cuTensorMapEncodeTiled(
      &map, type, 3, const_cast<void*>(base), dims, strides, box, element_strides, kCuTensorMapInterleaveNone,
      kCuTensorMapSwizzle128B, kCuTensorMapL2Promotion256B, kCuTensorMapOobFillNone);
  SY_CHECK(result == 0) << "cuTensorMapEncodeTiled refused a " << dtype_name(dtype) << " tensor at " << base
                        << " of dims [" << dims[2] << ", " << dims[1] << ", " << dims[0] << "] with byte strides ["
                        << strides[1] << ", " << strides[0] << "] (error " << result
                        << "); the base and strides must be multiples of 16 bytes";
  return map;
}

}  // namespace switchyard
