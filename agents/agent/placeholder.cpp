// Keeps the library non-empty until the agent lands.
namespace reprise {}
