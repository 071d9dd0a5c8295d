// A fixed set of worker threads with a bounded queue, for slow work a
// frontend must not run on its own threads (repository loads and unloads).
// Bounded both ways: at most `threads` tasks run at once and at most
// `max_queued` wait; the destructor lets queued tasks run and joins.
#ifndef TORII_SERVER_COMMON_TASK_POOL_H_
#define TORII_SERVER_COMMON_TASK_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace torii {

class TaskPool {
 public:
  TaskPool(size_t threads, size_t max_queued);
  ~TaskPool();
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  /// Queues `task`; false (and the task is dropped) when the queue is full
  /// or the pool is stopping.
  bool Submit(std::function<void()> task);

 private:
  void Loop();

  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace torii

#endif  // TORII_SERVER_COMMON_TASK_POOL_H_
