#include <algorithm>

#include "bind/registry.h"
#include "core/buffers.h"
#include "core/parallel.h"

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "fastnn compiled kernels (see fastnn/_ops.py for the typed entry points)";

  m.def("set_num_threads", &fastnn::set_num_threads, py::arg("n"),
        "Set the thread count of OpenMP kernels and of OpenBLAS together.");
  m.def("get_num_threads", &fastnn::get_num_threads);
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
