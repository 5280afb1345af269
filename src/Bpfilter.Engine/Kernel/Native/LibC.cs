using System.Runtime.InteropServices;

namespace Bpfilter.Engine.Kernel.Native;

/// <summary>The libc entry points the kernel layer needs. Nothing outside Kernel calls these.</summary>
internal static unsafe partial class LibC
{
    public const long SysBpf = 321; // __NR_bpf on x86_64
    public const int CloneNewNet = 0x40000000;
    public const int ORdOnly = 0, ORdWr = 2, OCreat = 0x40, ODirectory = 0x10000, ONoFollow = 0x20000, OCloexec = 0x80000;
    public const int LockEx = 2, LockNb = 4, LockUn = 8;

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    public static partial long Syscall(long number, long cmd, void* attr, long size);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    public static partial void* Mmap(void* address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(void* address, nuint length);

    public const int ProtRead = 1, ProtWrite = 2, MapShared = 1;

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    public static partial int Setns(int fd, int nstype);

    [LibraryImport("libc", EntryPoint = "if_nametoindex", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial uint IfNameToIndex(string name);

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mount(string source, string target, string fsType, ulong flags, string data);

    [LibraryImport("libc", EntryPoint = "statfs", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Statfs(string path, void* buffer);

    [LibraryImport("libc", EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Rename(string from, string to);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    public static partial int Flock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "fchmod", SetLastError = true)]
    public static partial int Fchmod(int fd, uint mode);

    [LibraryImport("libc", EntryPoint = "mkdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mkdir(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "chmod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Chmod(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEuid();

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Stat(string path, void* buffer);

    [LibraryImport("libc", EntryPoint = "lstat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Lstat(string path, void* buffer);

    /// <summary>st_mode and st_uid of <paramref name="path"/> itself, not of what a symbolic link points to (x86_64: st_mode@24, st_uid@28); errno on failure.</summary>
    public static int Lstat(string path, out uint mode, out uint uid)
    {
        var buffer = stackalloc uint[48];
        if (Lstat(path, buffer) != 0)
        {
            (mode, uid) = (0, 0);
            return LastError;
        }
        (mode, uid) = (buffer[6], buffer[7]);
        return 0;
    }

    /// <summary>st_ino of <paramref name="path"/> (struct stat on x86_64: st_dev@0, st_ino@8), or 0 when it cannot be read.</summary>
    public static ulong Inode(string path)
    {
        var buffer = stackalloc ulong[24];
        return Stat(path, buffer) == 0 ? buffer[1] : 0;
    }

    public static int LastError => Marshal.GetLastPInvokeError();
}
