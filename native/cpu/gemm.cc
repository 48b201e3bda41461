// Filled in next.
namespace crb_cpu {}
