using Bpfilter.Engine.Kernel.Native;

namespace Bpfilter.Engine.Kernel;

/// <summary>
/// Directories and pins that only their owner (root) may read or write. Whoever can write a deployment's directory
/// decides what its manifest says and which programs and links its pins hold, so the modes are set explicitly
/// (0700, 0600: never left to the umask), and what is read back is checked first: a symbolic link, an owner other
/// than root or this user, or write access for group or others makes it untrusted.
/// </summary>
public static class PrivatePaths
{
    public const uint DirectoryMode = 0x1c0; // 0700
    public const uint FileMode = 0x180;      // 0600

    private const uint TypeMask = 0xf000, TypeDirectory = 0x4000, TypeRegular = 0x8000, TypeSymlink = 0xa000;
    private const uint GroupOrOthersWrite = 0x12; // 0022

    /// <summary>Creates <paramref name="path"/> if it is missing (its parent must exist), checks it and makes it 0700.</summary>
    public static void EnsureDirectory(string path, string remedy)
    {
        // Made 0700 (less the umask) from the start: never, not even for a moment, open to others.
        if (LibC.Mkdir(path, DirectoryMode) != 0 && LibC.LastError is var errno && errno != 17) throw new KernelException($"mkdir {path}", errno);
        Check(path, directory: true, remedy);
        Restrict(path, DirectoryMode);
    }

    public static void Restrict(string path, uint mode)
    {
        if (LibC.Chmod(path, mode) != 0) throw new KernelException($"chmod {Convert.ToString(mode, 8)} {path}", LibC.LastError);
    }

    /// <summary>
    /// Throws PathUntrusted unless <paramref name="path"/> is a directory (or a regular file, which pins are) of root
    /// or this user that group and others cannot write. A path that does not exist passes: callers see that it is missing.
    /// <paramref name="remedy"/> ends the message: how to get rid of it once it is known who changed it.
    /// </summary>
    public static void Check(string path, bool directory, string remedy)
    {
        int errno = LibC.Lstat(path, out var mode, out var uid);
        if (errno == 2) return;
        if (errno != 0) throw new KernelException($"lstat {path}", errno);
        var expected = directory ? TypeDirectory : TypeRegular;
        string? why = (mode & TypeMask) == TypeSymlink ? "is a symbolic link"
            : (mode & TypeMask) != expected ? $"is not a {(directory ? "directory" : "file")}"
            : uid != 0 && uid != LibC.GetEuid() ? $"belongs to user {uid}, not root"
            : (mode & GroupOrOthersWrite) != 0 ? $"can be written by {((mode & 0x2) != 0 ? "every user" : "its group")} (mode {Convert.ToString(mode & 0xfff, 8)})"
            : null;
        if (why is not null)
            throw new BpfilterException("PathUntrusted", FailureCategory.SecurityError,
                $"{path} {why}, so what it holds cannot be trusted: Bpfilter keeps deployments root's alone (directories 0700, pins 0600). "
                + $"Find out who changed it; {remedy}");
    }

    /// <summary>True when <paramref name="path"/> is a symbolic link (which is removed, never followed).</summary>
    public static bool IsSymbolicLink(string path) => LibC.Lstat(path, out var mode, out _) == 0 && (mode & TypeMask) == TypeSymlink;
}
