print("pathkernel")
