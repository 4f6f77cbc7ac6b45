#include <algorithm>
#include <cstdlib>

#include "bind/registry.h"
#include "core/buffers.h"
#include "core/cpu_level.h"
#include "core/parallel.h"

#include <pybind11/stl.h>

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "fastnn compiled kernels (see fastnn/ops for the op front)";

  // Before any kernel can run: the instruction-set level, at most FASTNN_CPU (a bad value
  // fails the import with its message).
  fastnn::cpu::select_level(std::getenv("FASTNN_CPU"));

  m.def("set_num_threads", &fastnn::set_num_threads, py::arg("n"),
        "Set the thread count of OpenMP kernels and of OpenBLAS together.");
  m.def("get_num_threads", &fastnn::get_num_threads);
  m.def("max_num_threads", &fastnn::max_num_threads,
        "The largest thread count set_num_threads accepts (4 per processor, at most 1024).");
  m.def("build_info", []() {
    py::dict d;
    d["blas"] = FASTNN_BLAS_NAME;
    d["openmp"] = _OPENMP;
#ifdef FASTNN_WITH_CUDA
    d["cuda"] = true;
#else
    d["cuda"] = false;
#endif
    py::list families;
    auto& reg = fastnn::bind::registry();
    std::vector<std::string> names;
    for (auto& r : reg) names.push_back(r.first);
    std::sort(names.begin(), names.end());
    for (auto& n : names) families.append(n);
    d["kernel_families"] = families;
    d["cpu_levels_compiled"] = fastnn::cpu::compiled_levels();
    d["cpu_level_detected"] = fastnn::cpu::detected_level();
    d["cpu_level"] = fastnn::cpu::active_level();
    return d;
  });

  m.def("buffer_cache_info", []() {
    py::dict d;
    d["idle_bytes"] = fastnn::buffers::idle_bytes();
    d["limit_bytes"] = fastnn::buffers::idle_limit();
    d["min_bytes"] = fastnn::buffers::kMinBytes;
    return d;
  });
  m.def("set_buffer_cache_limit", &fastnn::buffers::set_idle_limit, py::arg("nbytes"));
  m.def("release_buffers", &fastnn::buffers::release_idle);

  for (auto& r : fastnn::bind::registry()) r.second(m);
}
