using Bpfilter.Engine.Kernel.Native;

namespace Bpfilter.Engine.Kernel;

/// <summary>An exclusive flock(2) on a file, released on dispose or when the process dies.</summary>
public sealed class FileLock : IDisposable
{
    private readonly FileDescriptor _fd;

    private FileLock(FileDescriptor fd) => _fd = fd;

    public static FileLock Acquire(string path, TimeSpan timeout)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        int raw = LibC.Open(path, LibC.ORdWr | LibC.OCreat | LibC.OCloexec, 0x180 /* 0600 */);
        if (raw < 0) throw new KernelException($"open lock file {path}", LibC.LastError);
        var fd = new FileDescriptor(raw);
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
