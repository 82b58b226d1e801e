#include "emulator/return_path_writer.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "parser/wire/constants.h"
#include "parser/wire/endian.h"

namespace qmig {

absl::Status WriteAll(int fd, absl::Span<const uint8_t> bytes, int timeout_ms) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == ENOTSOCK) n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd pfd = {fd, POLLOUT, 0};
      int ready = poll(&pfd, 1, timeout_ms);
      if (ready == 0) return absl::DeadlineExceededError("peer stopped reading");
      if (ready < 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "poll");
      continue;
    }
    return absl::ErrnoToStatus(errno, "write");
  }
  return absl::OkStatus();
}

absl::Status ReturnPathWriter::Send(uint16_t type, absl::Span<const uint8_t> payload,
                                    absl::Span<const uint8_t> trailer) {
  std::vector<uint8_t> message;
  AppendBe16(message, type);
  AppendBe16(message, static_cast<uint16_t>(payload.size()));
  message.insert(message.end(), payload.begin(), payload.end());
  message.insert(message.end(), trailer.begin(), trailer.end());
  if (fd_ < 0) return absl::OkStatus();
  if (broken_) return absl::UnavailableError("return path closed");
  absl::Status status = WriteAll(fd_, message);
  if (!status.ok()) broken_ = true;
  ++messages_;
  return status;
}

absl::Status ReturnPathWriter::Pong(uint32_t value) {
  std::vector<uint8_t> payload;
  AppendBe32(payload, value);
  std::lock_guard<std::mutex> lock(mutex_);
  return Send(static_cast<uint16_t>(ReturnPathType::kPong), payload);
}

absl::Status ReturnPathWriter::Shut(uint32_t status) {
  std::vector<uint8_t> payload;
  AppendBe32(payload, status);
  std::lock_guard<std::mutex> lock(mutex_);
  return Send(static_cast<uint16_t>(ReturnPathType::kShut), payload);
}

absl::Status ReturnPathWriter::ResumeAck() {
  std::vector<uint8_t> payload;
  AppendBe32(payload, kResumeAckValue);
  std::lock_guard<std::mutex> lock(mutex_);
  return Send(static_cast<uint16_t>(ReturnPathType::kResumeAck), payload);
}

absl::Status ReturnPathWriter::RequestPages(absl::string_view block, uint64_t start,
                                            uint32_t length) {
  std::vector<uint8_t> payload;
  AppendBe64(payload, start);
  AppendBe32(payload, length);
  std::lock_guard<std::mutex> lock(mutex_);
  if (block != last_block_) {
    payload.push_back(static_cast<uint8_t>(block.size()));
    payload.insert(payload.end(), block.begin(), block.end());
    last_block_ = std::string(block);
    return Send(static_cast<uint16_t>(ReturnPathType::kReqPagesId), payload);
  }
  return Send(static_cast<uint16_t>(ReturnPathType::kReqPages), payload);
}

absl::Status ReturnPathWriter::RecvBitmap(absl::string_view block,
                                          absl::Span<const uint8_t> bitmap_le) {
  std::vector<uint8_t> payload;
  payload.push_back(static_cast<uint8_t>(block.size()));
  payload.insert(payload.end(), block.begin(), block.end());
  std::vector<uint8_t> trailer;
  AppendBe64(trailer, bitmap_le.size());
  trailer.insert(trailer.end(), bitmap_le.begin(), bitmap_le.end());
  AppendBe64(trailer, kRecvBitmapEndMark);
  std::lock_guard<std::mutex> lock(mutex_);
  return Send(static_cast<uint16_t>(ReturnPathType::kRecvBitmap), payload, trailer);
}

void ReturnPathWriter::Reset(int fd) {
  std::lock_guard<std::mutex> lock(mutex_);
  fd_ = fd;
  broken_ = false;
  last_block_.clear();
}

uint64_t ReturnPathWriter::messages() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return messages_;
}

}  // namespace qmig
