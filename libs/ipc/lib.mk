# libs/ipc: mailboxes and message queues on the scheduler's wait queues.
SRCS-y += src/channel.cpp src/message_queue.cpp
TESTS-y += tests/mailbox_test.cpp tests/message_queue_test.cpp
USES += sched time
