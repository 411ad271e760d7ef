{
  "targets": [
    {
      "target_name": "strata_native",
      "sources": ["agent/native/extents.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}
