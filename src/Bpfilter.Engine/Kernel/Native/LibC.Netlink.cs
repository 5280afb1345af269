using System.Runtime.InteropServices;

namespace Bpfilter.Engine.Kernel.Native;

/// <summary>The socket calls of the netlink client (<see cref="NfTables"/>).</summary>
internal static unsafe partial class LibC
{
    public const int AfNetlink = 16, SockRaw = 3, SockCloexec = 0x80000, NetlinkNetfilter = 12;
    public const int SolSocket = 1, SoRcvtimeo = 20;

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    public static partial nint Send(int fd, void* buffer, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    public static partial nint Recv(int fd, void* buffer, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
    public static partial int Setsockopt(int fd, int level, int name, void* value, uint length);
}
