namespace Bpfilter.Engine.Kernel;

/// <summary>How many BPF programs, maps and links the kernel holds, and how many fds this process has: for leak checks.</summary>
public sealed record KernelObjectCounts(int Programs, int Maps, int Links, int FileDescriptors)
{
    public static KernelObjectCounts Now() => new(
        Bpf.Ids(BpfCommand.ProgGetNextId).Count, Bpf.Ids(BpfCommand.MapGetNextId).Count, Bpf.Ids(BpfCommand.LinkGetNextId).Count,
        Directory.EnumerateFileSystemEntries("/proc/self/fd").Count());
}
