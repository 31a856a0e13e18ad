// Data parallelism across processes: a Communicator sums buffers over the ranks of a run. The
// backend is chosen once, at the first call of world(): MPI's COMM_WORLD when illada was built
// with MPI (CMake option ILLADA_MPI) and the process was started by an MPI launcher (mpirun,
// srun), otherwise a group of one process whose operations do nothing.
#pragma once

#include <span>
#include <string>

namespace illada::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "single" | "mpi"
  // In place, x <- the element-wise sum of x over all ranks; every rank must call it with the
  // same length, and every rank receives the same values.
  virtual void all_reduce_sum(std::span<float> x) = 0;
  virtual void all_reduce_sum(std::span<double> x) = 0;
  // Returns when every rank has called it.
  virtual void barrier() = 0;
};

// The process group of this program (initialised on first use; MPI is finalised at exit).
// Throws Error when started by an MPI launcher with several processes but built without MPI:
// the copies would otherwise train independently and overwrite each other's files.
Communicator& world();

// Whether this build can run data parallel with MPI.
bool built_with_mpi();

}  // namespace illada::dist
