{
  # The test-only addon (native/test_netns.c) is built in the development
  # tree only: scripts/build.mjs passes --l3dsr_test_addon=1. An installed
  # package builds l3dsr_tun alone, from the sources it ships.
  "variables": { "l3dsr_test_addon%": 0 },
  "targets": [
    {
      "target_name": "l3dsr_tun",
      "sources": [
        "native/addon.c",
        "native/device.c",
        "native/engine_readwrite.c",
        "native/engine_uring.c",
        "native/netns.c",
        "native/offload.c",
        "native/tun_open.c",
        "native/uring.c"
      ],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "defines": ["_GNU_SOURCE", "NAPI_VERSION=8"]
    },
    {
      "target_name": "l3dsr_raw",
      "sources": ["native/raw_socket.c"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "defines": ["_GNU_SOURCE", "NAPI_VERSION=8"]
    }
  ],
  "conditions": [
    ["l3dsr_test_addon==1", {
      "targets": [
        {
          "target_name": "l3dsr_test_netns",
          "sources": ["native/test_netns.c"],
          "cflags_c": ["-std=gnu11", "-O2", "-Wall"],
          "defines": ["_GNU_SOURCE", "NAPI_VERSION=8"]
        }
      ]
    }]
  ]
}
