#include "storage/src/records.h"

#include "storage/src/coding.h"

namespace txmq::storage {
namespace {
constexpr uint8_t kVersion1 = 1;

bool TakeVersion(std::string_view* in) {
  uint8_t v;
  return GetByte(in, &v) && v == kVersion1;
}
}  // namespace

void EncodeMessage(const MessageView& m, std::string* out) {
  size_t size = 32 + m.id.size() + m.topic.size() + m.key.size() + m.body.size();
  for (const auto& [k, v] : m.properties) size += k.size() + v.size() + 4;
  out->reserve(out->size() + size);
  out->push_back(static_cast<char>(kVersion1));
  out->push_back(static_cast<char>(m.flags));
  PutFixed64(out, static_cast<uint64_t>(m.born_ms));
  PutFixed64(out, static_cast<uint64_t>(m.stored_ms));
  PutLengthPrefixed(out, m.id);
  PutLengthPrefixed(out, m.topic);
  PutLengthPrefixed(out, m.key);
  PutVarint64(out, m.properties.size());
  for (const auto& [k, v] : m.properties) {
    PutLengthPrefixed(out, k);
    PutLengthPrefixed(out, v);
  }
  PutLengthPrefixed(out, m.body);
}

bool DecodeMessage(std::string_view in, MessageView* m) {
  uint64_t born, stored, nprops;
  if (!TakeVersion(&in) || !GetByte(&in, &m->flags) || !GetFixed64(&in, &born) ||
      !GetFixed64(&in, &stored) || !GetLengthPrefixed(&in, &m->id) ||
      !GetLengthPrefixed(&in, &m->topic) || !GetLengthPrefixed(&in, &m->key) ||
      !GetVarint64(&in, &nprops) || nprops > in.size()) {
    return false;
  }
  m->born_ms = static_cast<int64_t>(born);
  m->stored_ms = static_cast<int64_t>(stored);
  m->properties.clear();
  m->properties.reserve(nprops);
  for (uint64_t i = 0; i < nprops; ++i) {
    std::string_view k, v;
    if (!GetLengthPrefixed(&in, &k) || !GetLengthPrefixed(&in, &v)) return false;
    m->properties.emplace_back(k, v);
  }
  return GetLengthPrefixed(&in, &m->body) && in.empty();
}

namespace {

void PutLocation(std::string* out, const Location& l) {
  PutLengthPrefixed(out, l.topic);
  PutVarint64(out, l.queue);
  PutVarint64(out, l.offset);
}

bool GetLocation(std::string_view* in, Location* l) {
  std::string_view topic;
  if (!GetLengthPrefixed(in, &topic) || !GetVarint32(in, &l->queue) ||
      !GetVarint64(in, &l->offset)) {
    return false;
  }
  l->topic.assign(topic);
  return true;
}

}  // namespace

std::string EncodeRetry(const RetryRecord& r) {
  std::string out(1, static_cast<char>(kVersion1));
  PutLengthPrefixed(&out, r.topic);
  PutVarint64(&out, r.queue);
  PutVarint64(&out, r.offset);
  PutVarint64(&out, r.delivery_count);
  PutVarint64(&out, r.max_reconsume);
  if (r.source) PutLocation(&out, *r.source);
  return out;
}

bool DecodeRetry(std::string_view in, RetryRecord* r) {
  std::string_view topic;
  if (!TakeVersion(&in) || !GetLengthPrefixed(&in, &topic) || !GetVarint32(&in, &r->queue) ||
      !GetVarint64(&in, &r->offset) || !GetVarint32(&in, &r->delivery_count) ||
      !GetVarint32(&in, &r->max_reconsume)) {
    return false;
  }
  r->topic.assign(topic);
  r->source.reset();
  if (!in.empty()) {
    Location source;
    if (!GetLocation(&in, &source) || !in.empty()) return false;
    r->source = std::move(source);
  }
  return true;
}

}  // namespace txmq::storage
