using Bpfilter.Engine.Kernel.Native;

namespace Bpfilter.Engine.Kernel;

/// <summary>An exclusive flock(2) on a file, released on dispose or when the process dies.</summary>
public sealed class FileLock : IDisposable
{
    private readonly FileDescriptor _fd;

    private FileLock(FileDescriptor fd) => _fd = fd;

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for the lock. Its directory is made private (0700) first: it sits in
    /// world-writable /run/lock, where another user could otherwise hold every lock or plant links for root to follow.
    /// </summary>
    public static FileLock Acquire(string path, TimeSpan timeout)
    {
        var directory = Path.GetDirectoryName(path)!;
        var remedy = $"remove {directory} with 'rm -r' (no lock is held while nothing publishes); publishers make it again";
        PrivatePaths.EnsureDirectory(directory, remedy);
        int raw = LibC.Open(path, LibC.ORdWr | LibC.OCreat | LibC.ONoFollow | LibC.OCloexec, (int)PrivatePaths.FileMode);
        if (raw < 0)
        {
            int errno = LibC.LastError;
            if (errno == 40) PrivatePaths.Check(path, directory: false, remedy); // ELOOP: a symbolic link, which O_NOFOLLOW refused
            throw new KernelException($"open lock file {path}", errno);
        }
        var fd = new FileDescriptor(raw);
        if (LibC.Fchmod(fd.Value, PrivatePaths.FileMode) != 0)
        {
            int errno = LibC.LastError;
            fd.Dispose();
            throw new KernelException($"chmod 600 {path}", errno);
        }
        var deadline = DateTime.UtcNow + timeout;
        while (LibC.Flock(fd.Value, LibC.LockEx | LibC.LockNb) != 0)
        {
            int errno = LibC.LastError;
            if (errno != 11 || DateTime.UtcNow > deadline)
            {
                fd.Dispose();
                throw errno == 11
                    ? new BpfilterException("DeploymentLocked", FailureCategory.ResourceBusy,
                        $"another process has held {path} for more than {timeout.TotalSeconds:0} s; it may still be publishing")
                    : new KernelException($"lock {path}", errno);
            }
            Thread.Sleep(20);
        }
        return new FileLock(fd);
    }

    /// <summary>The lock if nobody holds it now, else null (never waits).</summary>
    public static FileLock? TryAcquire(string path)
    {
        try
        {
            return Acquire(path, TimeSpan.Zero);
        }
        catch (BpfilterException e) when (e.ErrorId == "DeploymentLocked")
        {
            return null;
        }
    }

    public void Dispose() => _fd.Dispose();
}
