{
  'targets': [
    {
      'target_name': 'salvo_native',
      'sources': ['native/salvo.c', 'native/file-ops.c', 'native/crc32c.c', 'native/threads.c', 'native/notify.c'],
      'cflags': ['-Wall', '-Wextra', '-O2'],
    },
  ],
}
