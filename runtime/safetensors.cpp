#include "runtime/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>

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

StoredTensor parse_entry(const std::string& path, const std::string& name, const nlohmann::json& info,
                         const std::string& data, std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  SY_CHECK(info.is_object() && info.contains("dtype") && info.contains("shape") && info.contains("data_offsets"))
      << path << ": tensor '" << name << "' lacks dtype, shape or data_offsets";
  StoredTensor t;
  t.dtype = info["dtype"].get<std::string>();
  size_t element = safetensors_element_size(t.dtype);
  SY_CHECK(element > 0) << path << ": tensor '" << name << "' has unsupported dtype " << t.dtype;
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
  SY_CHECK(begin <= end && end <= data.size())
      << path << ": tensor '" << name << "' claims bytes [" << begin << ", " << end << ") but the file has "
      << data.size() << " data bytes (truncated or lying header)";
  SY_CHECK(end - begin == numel * element)
      << path << ": tensor '" << name << "' has " << end - begin << " bytes but its shape needs " << numel * element;
  ranges.emplace_back(begin, end);
  t.bytes = data.substr(begin, end - begin);
  return t;
}

}  // namespace

TensorFile read_safetensors(const std::string& path) {
  std::string file;
  SY_CHECK(fs::try_read_file(path, file)) << "cannot read safetensors file '" << path << "'";
  SY_CHECK(file.size() >= 8) << path << " is too short to be a safetensors file (" << file.size() << " bytes)";
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<unsigned char>(file[i]);
  SY_CHECK(header_size <= file.size() - 8 && header_size <= (100u << 20))
      << path << ": header length " << header_size << " does not fit the file's " << file.size() << " bytes";
  auto header = nlohmann::json::parse(file.substr(8, header_size), nullptr, false);
  SY_CHECK(!header.is_discarded() && header.is_object()) << path << ": the header is not a JSON object";
  std::string data = file.substr(8 + header_size);
  TensorFile tensors;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    tensors[name] = parse_entry(path, name, info, data, ranges);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    SY_CHECK(ranges[i].first >= ranges[i - 1].second) << path << ": tensors overlap in the data area (lying header)";
  }
  return tensors;
}

void write_safetensors(const std::string& path, const TensorFile& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump();
  while ((text.size() + 8) % 8 != 0) text += ' ';  // data aligned to 8 bytes, as the format suggests
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  out += text;
  for (const auto& [name, t] : tensors) out += t.bytes;
  std::string tmp = path + ".tmp-" + fs::unique_suffix();
  try {
    fs::write_file(tmp, out, /*sync=*/true);
  } catch (const BackendError& e) {
    SY_THROW(UserError) << "cannot write safetensors file '" << path << "': " << e.what();
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    fs::remove_tree(tmp);
    SY_THROW(UserError) << "cannot write safetensors file '" << path << "'";
  }
}

}  // namespace switchyard
