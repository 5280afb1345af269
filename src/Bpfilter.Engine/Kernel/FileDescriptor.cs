using Bpfilter.Engine.Kernel.Native;
using Microsoft.Win32.SafeHandles;

namespace Bpfilter.Engine.Kernel;

/// <summary>An owned Linux file descriptor (a map, program, link, namespace or lock file), closed exactly once.</summary>
public sealed class FileDescriptor : SafeHandleZeroOrMinusOneIsInvalid
{
    public FileDescriptor(int fd) : base(ownsHandle: true) => SetHandle(fd);

    /// <summary>The raw number, valid while this object is alive.</summary>
    public int Value => IsClosed ? throw new ObjectDisposedException(nameof(FileDescriptor)) : (int)handle;

    protected override bool ReleaseHandle() => LibC.Close((int)handle) == 0;

    public override string ToString() => $"fd {(int)handle}";
}
