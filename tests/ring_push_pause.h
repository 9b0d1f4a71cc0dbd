// The ring's push-window hook for tests: included before
// kernel/ghost_ring_ops.h, it lets a test stop that file's pushes inside their
// window (after taking a position: at 0; after writing the fields: at 1) and
// act there, as another CPU would. The agent's Ring::Push, compiled in
// libghost without it, is not affected.
#ifndef GHOST_SCX_TESTS_RING_PUSH_PAUSE_H_
#define GHOST_SCX_TESTS_RING_PUSH_PAUSE_H_

#include <functional>

namespace ghost_test {

// Set on a thread to stop its pushes; cleared (nullptr) to let them run.
inline thread_local std::function<void(int)> push_pause;

inline void PushPause(int at) {
  if (push_pause) push_pause(at);
}

}  // namespace ghost_test

#define GHOST_RING_PUSH_PAUSE(at) ::ghost_test::PushPause(at)

#endif  // GHOST_SCX_TESTS_RING_PUSH_PAUSE_H_
