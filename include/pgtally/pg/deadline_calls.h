#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

namespace pgtally::pg {

// Runs blocking calls that have no timeout of their own (getaddrinfo; stat, open and read on a
// network file system that may hang) so that the caller waits no longer than its deadline. Each
// call runs on a detached thread; a call still running at the deadline is abandoned and its
// result discarded when it ends. At most `max_outstanding` calls run at once, abandoned ones
// included, so a hung resolver or mount cannot pile up threads: past the bound, a call is
// refused at once. Thread-safe; calls may outlive this object.
class DeadlineCalls {
 public:
  enum class Status { kDone, kLate, kBusy };
  template <typename T>
  struct Outcome {
    Status status = Status::kBusy;
    std::optional<T> value;  // set when kDone
  };

  explicit DeadlineCalls(int max_outstanding)
      : shared_(std::make_shared<Shared>()), max_outstanding_(max_outstanding) {}

  template <typename T>
  Outcome<T> Run(std::function<T()> call, std::chrono::steady_clock::time_point deadline) {
    {
      std::lock_guard lock(shared_->mutex);
      if (shared_->outstanding >= max_outstanding_) return {Status::kBusy, std::nullopt};
      ++shared_->outstanding;
    }
    struct Slot {
      std::mutex mutex;
      std::condition_variable done;
      std::optional<T> value;
    };
    auto slot = std::make_shared<Slot>();
    try {
      std::thread([slot, shared = shared_, call = std::move(call)]() mutable {
        T value = call();
        {
          std::lock_guard lock(slot->mutex);
          slot->value = std::move(value);
        }
        slot->done.notify_all();
        std::lock_guard lock(shared->mutex);
        --shared->outstanding;
      }).detach();
    } catch (const std::system_error&) {
      std::lock_guard lock(shared_->mutex);
      --shared_->outstanding;
      return {Status::kBusy, std::nullopt};
    }
    std::unique_lock lock(slot->mutex);
    if (!slot->done.wait_until(lock, deadline, [&] { return slot->value.has_value(); })) {
      return {Status::kLate, std::nullopt};
    }
    return {Status::kDone, std::move(slot->value)};
  }

  // Calls running now, abandoned ones included.
  int outstanding() const {
    std::lock_guard lock(shared_->mutex);
    return shared_->outstanding;
  }
  int max_outstanding() const { return max_outstanding_; }

 private:
  struct Shared {
    std::mutex mutex;
    int outstanding = 0;
  };
  std::shared_ptr<Shared> shared_;
  int max_outstanding_;
};

}  // namespace pgtally::pg
