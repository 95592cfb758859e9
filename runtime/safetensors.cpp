#include "runtime/safetensors.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <future>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/fs.h"

namespace switchyard {

std::string safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "F32";
    case DType::kFloat64:
      return "F64";
    case DType::kFloat16:
      return "F16";
    case DType::kBFloat16:
      return "BF16";
    case DType::kInt32:
      return "I32";
  }
  return "?";
}

size_t safetensors_element_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64") return 8;
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F16" || dtype == "BF16") return 2;
  return 0;
}

namespace {

TensorSlice parse_entry(const std::string& path, const std::string& name, const nlohmann::json& info,
                        uint64_t data_offset, uint64_t data_bytes) {
  SY_CHECK(info.is_object() && info.contains("dtype") && info.contains("shape") && info.contains("data_offsets"))
      << path << ": tensor '" << name << "' lacks dtype, shape or data_offsets";
  TensorSlice t;
  SY_CHECK(info["dtype"].is_string()) << path << ": tensor '" << name << "' has a bad dtype " << info["dtype"].dump();
  t.dtype = info["dtype"].get<std::string>();
  size_t element = safetensors_element_size(t.dtype);
  SY_CHECK(element > 0) << path << ": tensor '" << name << "' has unsupported dtype " << t.dtype;
  SY_CHECK(info["shape"].is_array()) << path << ": tensor '" << name << "' has a bad shape " << info["shape"].dump();
  uint64_t numel = 1;
  for (const auto& d : info["shape"]) {
    SY_CHECK(d.is_number_integer() && d.get<int64_t>() >= 0 && d.get<int64_t>() < (int64_t{1} << 40))
        << path << ": tensor '" << name << "' has a bad shape " << info["shape"].dump();
    t.shape.push_back(d.get<int64_t>());
    numel *= static_cast<uint64_t>(d.get<int64_t>());
  }
  const auto& offsets = info["data_offsets"];
  SY_CHECK(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
           offsets[1].is_number_unsigned())
      << path << ": tensor '" << name << "' has bad data_offsets " << offsets.dump();
  uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
  SY_CHECK(begin <= end && end <= data_bytes)
      << path << ": tensor '" << name << "' claims bytes [" << begin << ", " << end << ") but the file has "
      << data_bytes << " data bytes (truncated or lying header)";
  SY_CHECK(end - begin == numel * element)
      << path << ": tensor '" << name << "' has " << end - begin << " bytes but its shape needs " << numel * element;
  t.offset = data_offset + begin;
  t.bytes = end - begin;
  return t;
}

uint64_t file_size(int fd, const std::string& path) {
  struct stat st {};
  SY_CHECK(::fstat(fd, &st) == 0) << "cannot stat safetensors file '" << path << "'";
  return static_cast<uint64_t>(st.st_size);
}

// `bytes` bytes at `offset` of `fd`; UserError (a file cut short under us) when they are not there.
void read_fully(int fd, const std::string& path, uint64_t offset, char* out, size_t bytes) {
  while (bytes > 0) {
    const ssize_t got = ::pread(fd, out, bytes, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    SY_CHECK(got > 0) << "cannot read " << bytes << " bytes at offset " << offset << " of safetensors file '" << path
                      << "'" << (got == 0 ? " (the file is shorter than its header says)" : "");
    out += got;
    offset += static_cast<uint64_t>(got);
    bytes -= static_cast<size_t>(got);
  }
}

// read_fully by several threads, each a contiguous range of at least `bytes_per_thread`, for a
// large read into host memory: one thread copying out of the page cache into fresh memory (its
// page faults included) moves 1.5 GB/s on the 2-core CI machine.
void read_fully_parallel(int fd, const std::string& path, uint64_t offset, char* out, size_t bytes,
                         size_t bytes_per_thread = size_t{64} << 20) {
  const size_t threads = std::min<size_t>(
      {std::max(1u, std::thread::hardware_concurrency()), 8, std::max<size_t>(1, bytes / bytes_per_thread)});
  if (threads == 1) return read_fully(fd, path, offset, out, bytes);
  std::vector<std::exception_ptr> errors(threads);
  std::vector<std::thread> readers;
  const size_t share = (bytes + threads - 1) / threads;
  for (size_t t = 0; t < threads; ++t)
    readers.emplace_back([&, t] {
      const size_t begin = std::min(bytes, t * share), end = std::min(bytes, begin + share);
      try {
        read_fully(fd, path, offset + begin, out + begin, end - begin);
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  for (std::thread& reader : readers) reader.join();
  for (const std::exception_ptr& error : errors)
    if (error) std::rethrow_exception(error);
}

}  // namespace

TensorIndex read_safetensors_index(const std::string& path) {
  return SafetensorsReader(path).index();
}

TensorFile read_safetensors(const std::string& path) {
  return SafetensorsReader(path).read_all();
}

SafetensorsReader::SafetensorsReader(const std::string& path, size_t chunk_bytes)
    : path_(path), fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)), chunk_bytes_(chunk_bytes) {
  SY_CHECK(fd_.get() >= 0) << "cannot read safetensors file '" << path << "'";
  SY_CHECK(chunk_bytes_ > 0) << "safetensors chunk of 0 bytes";
  read_header();  // a throw closes the file: fd_ is a constructed member
}

void SafetensorsReader::read_header() {
  const uint64_t size = file_size(fd_.get(), path_);
  SY_CHECK(size >= 8) << path_ << " is too short to be a safetensors file (" << size << " bytes)";
  unsigned char length[8];
  read_fully(fd_.get(), path_, 0, reinterpret_cast<char*>(length), 8);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | length[i];
  SY_CHECK(header_size <= size - 8 && header_size <= (100u << 20))
      << path_ << ": header length " << header_size << " does not fit the file's " << size << " bytes";
  std::string text(header_size, '\0');
  read_fully(fd_.get(), path_, 8, text.data(), text.size());
  auto header = nlohmann::json::parse(text, nullptr, false);
  SY_CHECK(!header.is_discarded() && header.is_object()) << path_ << ": the header is not a JSON object";
  TensorIndex index;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      read_metadata(info);
      continue;
    }
    TensorSlice slice = parse_entry(path_, name, info, 8 + header_size, size - 8 - header_size);
    ranges.emplace_back(slice.offset, slice.offset + slice.bytes);
    index[name] = std::move(slice);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    SY_CHECK(ranges[i].first >= ranges[i - 1].second) << path_ << ": tensors overlap in the data area (lying header)";
  }
  index_ = std::move(index);
}

void SafetensorsReader::read_metadata(const nlohmann::json& info) {
  SY_CHECK(info.is_object()) << path_ << ": __metadata__ is not an object (the format maps strings to strings)";
  for (const auto& [key, value] : info.items()) {
    SY_CHECK(value.is_string()) << path_ << ": __metadata__ entry '" << key << "' is " << value.dump()
                                << "; the format maps strings to strings";
    metadata_[key] = value.get<std::string>();
  }
}

TensorFile SafetensorsReader::read_all() {
  TensorFile tensors;
  for (const auto& [name, slice] : index_) {
    StoredTensor& t = tensors[name];
    t.dtype = slice.dtype;
    t.shape = slice.shape;
    t.bytes.resize(slice.bytes);
    read(slice, t.bytes.data());
  }
  return tensors;
}

void SafetensorsReader::read(const TensorSlice& slice, void* host_dst) {
  read_fully_parallel(fd_.get(), path_, slice.offset, static_cast<char*>(host_dst), slice.bytes);
}

void SafetensorsReader::read_into(Device& device, const TensorSlice& slice, void* device_dst) {
  if (!device.is_cuda()) {  // the CPU device's memory is host memory: no staging
    read(slice, device_dst);
    return;
  }
  read_staged(device, slice, device_dst);
}

void SafetensorsReader::read_staged(Device& device, const TensorSlice& slice, void* device_dst) {
  if (slice.bytes == 0) return;
  const uint64_t chunk = std::min<uint64_t>(chunk_bytes_, slice.bytes), chunks = (slice.bytes + chunk - 1) / chunk;
  auto size_of = [&](uint64_t i) { return static_cast<size_t>(std::min(chunk, slice.bytes - i * chunk)); };
  // Sized and page-locked here, before the reads: registration is the caller's thread's work.
  for (PinnedHostBuffer& buffer : staging_) buffer.reserve(device, static_cast<size_t>(chunk));
  auto read_chunk = [&](uint64_t i) {
    // The staging buffers are reused (no page faults after the first chunk): smaller shares.
    read_fully_parallel(fd_.get(), path_, slice.offset + i * chunk, staging_[i % 2].data(), size_of(i),
                        size_t{16} << 20);
  };
  read_chunk(0);
  for (uint64_t i = 0; i < chunks; ++i) {
    std::future<void> next;
    if (i + 1 < chunks) next = std::async(std::launch::async, read_chunk, i + 1);
    try {
      device.copy_from_host(static_cast<char*>(device_dst) + i * chunk, staging_[i % 2].data(), size_of(i));
    } catch (...) {
      if (next.valid()) next.wait();  // the reader writes into this object's buffers
      throw;
    }
    if (next.valid()) next.get();  // a failed read throws here
  }
}

void write_safetensors(const std::string& path, const TensorFile& tensors,
                       const std::map<std::string, std::string>& metadata) {
  TensorSources sources;
  for (const auto& [name, t] : tensors)
    sources[name] = {t.dtype, t.shape, t.bytes.size(), [&bytes = t.bytes](uint64_t offset, size_t count, char* out) {
                       std::memcpy(out, bytes.data() + offset, count);
                     }};
  write_safetensors_streamed(path, sources, metadata);
}

namespace {

// The 8-byte length and the JSON header of `tensors`, laid out in the map's order, padded so that
// the data starts 8-byte aligned, as the format suggests.
std::string safetensors_header(const TensorSources& tensors, const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes}}};
    offset += t.bytes;
  }
  std::string text = header.dump();
  while ((text.size() + 8) % 8 != 0) text += ' ';
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  return out + text;
}

}  // namespace

void write_safetensors_streamed(const std::string& path, const TensorSources& tensors,
                                const std::map<std::string, std::string>& metadata, size_t chunk_bytes) {
  uint64_t largest = 0;
  for (const auto& [name, t] : tensors) {
    SY_INTERNAL_CHECK(t.bytes == 0 || t.read) << "tensor '" << name << "' has bytes and nothing to read them from";
    largest = std::max(largest, t.bytes);
  }
  const std::string tmp = path + ".tmp-" + fs::unique_suffix();
  try {
    fs::FileWriter file(tmp);
    file.write(safetensors_header(tensors, metadata));
    std::vector<char> chunk(static_cast<size_t>(std::min<uint64_t>(std::max<size_t>(chunk_bytes, 1), largest)));
    for (const auto& [name, t] : tensors)
      for (uint64_t offset = 0; offset < t.bytes; offset += chunk.size()) {
        const size_t count = static_cast<size_t>(std::min<uint64_t>(chunk.size(), t.bytes - offset));
        t.read(offset, count, chunk.data());
        file.write({chunk.data(), count});
      }
    file.finish(/*sync=*/true);
  } catch (const BackendError& e) {
    fs::remove_tree(tmp);
    SY_THROW(UserError) << "cannot write safetensors file '" << path << "': " << e.what();
  } catch (...) {
    fs::remove_tree(tmp);
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    fs::remove_tree(tmp);
    SY_THROW(UserError) << "cannot write safetensors file '" << path << "': " << std::strerror(error);
  }
}

}  // namespace switchyard
